// SPDX-License-Identifier: GPL-2.0
/*
 * tls.bpf.c — uprobes on OpenSSL's plaintext entry points, for
 * `xenovia observe` (docs/observe.md). Built with clang -target bpf (CO-RE,
 * vmlinux.h generated from the running kernel's BTF) and embedded in the
 * loader through `bpftool gen skeleton`.
 *
 * SSL_write/SSL_write_ex/SSL_read/SSL_read_ex: the entry saves the
 * arguments per thread; the (sleepable) return probe copies the bytes the
 * call really moved with bpf_copy_from_user (pages the program never touched
 * are faulted in, which a non-sleepable probe cannot do) into ring-buffer
 * records of at most XV_OBS_CHUNK bytes, XV_OBS_MAX_CHUNKS per call; the rest
 * is counted, not copied. SSL_new/SSL_free mark identity (SSL* addresses are
 * reused).
 *
 * Invariants: nothing here writes user memory or changes a return value; a
 * record that does not fit the ring is counted (global and per-connection
 * sequence numbers show the gap to the consumer), never waited for.
 * Wake-ups are batched: the consumer is woken only when XV_OBS_WAKE_BYTES
 * are pending, otherwise it polls on a short timer.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "xv_observe_event.h"

#define XV_OBS_WAKE_BYTES (256 * 1024)

char LICENSE[] SEC("license") = "GPL";

struct args {
    __u64 ssl;
    __u64 buf;
    __u64 outp;   /* size_t * of the _ex forms, else 0 */
    __u32 kind;
    __u32 pad;
};

struct conn_key {
    __u64 ssl;
    __u32 tgid;
    __u32 pad;
};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 64 * 1024 * 1024);
} xv_events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __type(key, __u64);
    __type(value, struct args);
} xv_args SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __type(key, struct conn_key);
    __type(value, __u64);
} xv_conn_seq SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, XV_OBS_C_COUNT);
    __type(key, __u32);
    __type(value, __u64);
} xv_counters SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} xv_seq SEC(".maps");

/* Processes followed (their forks are followed too); filled by the loader
 * and by xv_fork. */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 4096);
    __type(key, __u32);
    __type(value, __u8);
} xv_targets SEC(".maps");

struct small_rec {
    struct xv_obs_hdr h;
    char data[XV_OBS_SMALL];
};
struct big_rec {
    struct xv_obs_hdr h;
    char data[XV_OBS_CHUNK];
};

/* n bounded to max in a way the verifier sees (the compiler cannot drop the
 * check: the asm hides what it knew about n). */
static __always_inline __u64 bounded(__u64 n, __u64 max)
{
    asm volatile("" : "+r"(n));
    if (n > max)
        n = max;
    return n;
}

static __always_inline void count(__u32 which, __u64 n)
{
    __u64 *v = bpf_map_lookup_elem(&xv_counters, &which);
    if (v)
        __sync_fetch_and_add(v, n);
}

static __always_inline __u64 next_seq(void)
{
    __u32 z = 0;
    __u64 *v = bpf_map_lookup_elem(&xv_seq, &z);
    return v ? __sync_fetch_and_add(v, 1) + 1 : 0;
}

static __always_inline __u64 next_conn_seq(__u64 ssl, __u32 tgid)
{
    struct conn_key k = { .ssl = ssl, .tgid = tgid };
    __u64 *v = bpf_map_lookup_elem(&xv_conn_seq, &k);
    if (v)
        return __sync_fetch_and_add(v, 1) + 1;
    __u64 one = 1;
    bpf_map_update_elem(&xv_conn_seq, &k, &one, BPF_NOEXIST);
    v = bpf_map_lookup_elem(&xv_conn_seq, &k);
    return v ? *v : 1;
}

static __always_inline __u64 wake_flag(void)
{
    return bpf_ringbuf_query(&xv_events, BPF_RB_AVAIL_DATA) >= XV_OBS_WAKE_BYTES
               ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

static __always_inline void fill(struct xv_obs_hdr *h, __u64 ssl, __u32 kind, __u64 id)
{
    h->seq = next_seq();
    h->conn_seq = next_conn_seq(ssl, (__u32)(id >> 32));
    h->ssl = ssl;
    h->ts_ns = bpf_ktime_get_ns();
    h->tgid = id >> 32;
    h->tid = (__u32)id;
    h->kind = kind;
}

/* One record of the call's bytes [off, off + n), n <= XV_OBS_CHUNK. */
static __always_inline int emit_chunk(__u64 ssl, __u32 kind, __u64 id, __u64 buf, __u32 off,
                                      __u32 n, __u32 total, __u32 cut)
{
    if (n <= XV_OBS_SMALL) {
        struct small_rec *r = bpf_ringbuf_reserve(&xv_events, sizeof *r, 0);
        if (!r)
            goto drop;
        fill(&r->h, ssl, kind, id);
        r->h.len = n;
        r->h.offset = off;
        r->h.total = total;
        r->h.cut = cut;
        __u64 sz = bounded(n, XV_OBS_SMALL);
        r->h.copy_fail = bpf_copy_from_user(r->data, sz, (void *)(buf + off)) != 0;
        if (r->h.copy_fail)
            count(XV_OBS_C_COPY_FAIL, 1);
        __u64 f = wake_flag();
        bpf_ringbuf_submit(r, f);
        count(XV_OBS_C_EVENTS, 1);
        return 0;
    }
    struct big_rec *r = bpf_ringbuf_reserve(&xv_events, sizeof *r, 0);
    if (!r)
        goto drop;
    fill(&r->h, ssl, kind, id);
    r->h.len = n;
    r->h.offset = off;
    r->h.total = total;
    r->h.cut = cut;
    __u64 sz = bounded(n, XV_OBS_CHUNK);
    r->h.copy_fail = bpf_copy_from_user(r->data, sz, (void *)(buf + off)) != 0;
    if (r->h.copy_fail)
        count(XV_OBS_C_COPY_FAIL, 1);
    __u64 f = wake_flag();
    bpf_ringbuf_submit(r, f);
    count(XV_OBS_C_EVENTS, 1);
    return 0;
drop:
    /* the sequence numbers still advance, so the consumer sees the gap */
    next_seq();
    next_conn_seq(ssl, (__u32)(id >> 32));
    count(XV_OBS_C_DROPPED, 1);
    count(XV_OBS_C_DROP_BYTES, n);
    return -1;
}

static __always_inline int on_entry(__u64 ssl, __u64 buf, __u64 outp, __u32 kind)
{
    __u64 id = bpf_get_current_pid_tgid();
    struct args a = { .ssl = ssl, .buf = buf, .outp = outp, .kind = kind };
    bpf_map_update_elem(&xv_args, &id, &a, BPF_ANY);
    return 0;
}

struct chunk_ctx {
    __u64 ssl, buf, id;
    __u32 kind, total, cut, off;
};

/* bpf_loop body: the call's i-th chunk (the verifier checks it once). */
static long chunk_cb(__u64 i, void *p)
{
    struct chunk_ctx *cx = p;
    __u32 cap = XV_OBS_CHUNK * XV_OBS_MAX_CHUNKS;
    __u32 end = cx->total < cap ? cx->total : cap;
    if (cx->off >= end)
        return 1;
    __u32 left = end - cx->off;
    __u32 n = left > XV_OBS_CHUNK ? XV_OBS_CHUNK : left;
    int last = cx->off + n >= end;
    emit_chunk(cx->ssl, cx->kind, cx->id, cx->buf, cx->off, n, cx->total, last ? cx->cut : 0);
    cx->off += n;
    return last;
}

static __always_inline int on_return(long ret, int ex)
{
    __u64 id = bpf_get_current_pid_tgid();
    struct args *ap = bpf_map_lookup_elem(&xv_args, &id);
    if (!ap)
        return 0;
    struct args a = *ap;
    bpf_map_delete_elem(&xv_args, &id);
    __u64 moved = 0;
    if (ex) {
        if (ret != 1 || !a.outp)
            return 0;
        if (bpf_copy_from_user(&moved, sizeof moved, (void *)a.outp) != 0)
            return 0;
    } else {
        if (ret <= 0)
            return 0;
        moved = (__u64)ret;
    }
    if (moved > 0x7fffffff)
        moved = 0x7fffffff;
    __u32 total = (__u32)moved;
    __u32 cap = XV_OBS_CHUNK * XV_OBS_MAX_CHUNKS;
    __u32 cut = total > cap ? total - cap : 0;
    if (cut)
        count(XV_OBS_C_CUT_BYTES, cut);
    struct chunk_ctx cx = { .ssl = a.ssl, .buf = a.buf, .id = id, .kind = a.kind,
                            .total = total, .cut = cut };
    __u32 n = (total + XV_OBS_CHUNK - 1) / XV_OBS_CHUNK;
    bpf_loop(n > XV_OBS_MAX_CHUNKS ? XV_OBS_MAX_CHUNKS : n, chunk_cb, &cx, 0);
    return 0;
}

SEC("uprobe")
int BPF_KPROBE(xv_ssl_write, void *ssl, const void *buf, int num)
{
    return on_entry((__u64)ssl, (__u64)buf, 0, XV_OBS_TX);
}

SEC("uprobe")
int BPF_KPROBE(xv_ssl_write_ex, void *ssl, const void *buf, __u64 num, __u64 *written)
{
    return on_entry((__u64)ssl, (__u64)buf, (__u64)written, XV_OBS_TX);
}

SEC("uprobe")
int BPF_KPROBE(xv_ssl_read, void *ssl, void *buf, int num)
{
    return on_entry((__u64)ssl, (__u64)buf, 0, XV_OBS_RX);
}

SEC("uprobe")
int BPF_KPROBE(xv_ssl_read_ex, void *ssl, void *buf, __u64 num, __u64 *readbytes)
{
    return on_entry((__u64)ssl, (__u64)buf, (__u64)readbytes, XV_OBS_RX);
}

SEC("uretprobe.s")
int BPF_KRETPROBE(xv_ssl_ret, long ret)
{
    return on_return((int)ret, 0);
}

SEC("uretprobe.s")
int BPF_KRETPROBE(xv_ssl_ret_ex, long ret)
{
    return on_return((int)ret, 1);
}

static __always_inline int control(__u64 ssl, __u32 kind)
{
    __u64 id = bpf_get_current_pid_tgid();
    struct xv_obs_hdr *h = bpf_ringbuf_reserve(&xv_events, sizeof *h, 0);
    if (!h) {
        next_seq();
        next_conn_seq(ssl, (__u32)(id >> 32));
        count(XV_OBS_C_DROPPED, 1);
    } else {
        fill(h, ssl, kind, id);
        h->len = h->offset = h->total = h->cut = h->copy_fail = 0;
        __u64 f = wake_flag();
        bpf_ringbuf_submit(h, f);
    }
    if (kind == XV_OBS_FREE) {
        struct conn_key k = { .ssl = ssl, .tgid = (__u32)(id >> 32) };
        bpf_map_delete_elem(&xv_conn_seq, &k);
    }
    return 0;
}

SEC("uprobe")
int BPF_KPROBE(xv_ssl_free, void *ssl)
{
    return control((__u64)ssl, XV_OBS_FREE);
}

SEC("uretprobe")
int BPF_KRETPROBE(xv_ssl_new_ret, void *ssl)
{
    if (!ssl)
        return 0;
    return control((__u64)ssl, XV_OBS_NEW);
}

/* A followed process forked: follow the child and tell the consumer, which
 * attaches the probes to it. BTF tracepoints: no tracefs needed. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(xv_fork, struct task_struct *parent, struct task_struct *child)
{
    __u32 tgid = bpf_get_current_pid_tgid() >> 32;
    if (!bpf_map_lookup_elem(&xv_targets, &tgid))
        return 0;
    __u32 cpid = (__u32)child->pid;
    if ((__u32)child->tgid != cpid)
        return 0;                       /* a new thread, not a new process */
    __u8 one = 1;
    bpf_map_update_elem(&xv_targets, &cpid, &one, BPF_ANY);
    struct xv_obs_hdr *h = bpf_ringbuf_reserve(&xv_events, sizeof *h, 0);
    if (!h) {
        count(XV_OBS_C_DROPPED, 1);
        return 0;
    }
    __builtin_memset(h, 0, sizeof *h);
    h->seq = next_seq();
    h->tgid = tgid;
    h->kind = XV_OBS_FORK;
    h->ssl = cpid;
    h->ts_ns = bpf_ktime_get_ns();
    bpf_ringbuf_submit(h, BPF_RB_FORCE_WAKEUP);
    return 0;
}

/* A followed process called execve: the consumer attaches to the new image. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(xv_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
    __u32 tgid = bpf_get_current_pid_tgid() >> 32;
    if (!bpf_map_lookup_elem(&xv_targets, &tgid))
        return 0;
    struct xv_obs_hdr *h = bpf_ringbuf_reserve(&xv_events, sizeof *h, 0);
    if (!h) {
        count(XV_OBS_C_DROPPED, 1);
        return 0;
    }
    __builtin_memset(h, 0, sizeof *h);
    h->seq = next_seq();
    h->tgid = tgid;
    h->kind = XV_OBS_EXEC;
    h->ts_ns = bpf_ktime_get_ns();
    bpf_ringbuf_submit(h, BPF_RB_FORCE_WAKEUP);
    return 0;
}
