/*
 * observe — `xenovia observe`: the optional eBPF observe-only path
 * (docs/observe.md). Uprobes on OpenSSL's SSL_write/SSL_read (and the _ex
 * forms, SSL_new/SSL_free) of target processes copy the plaintext into a
 * ring buffer; one consumer thread feeds it into the same conn/ pipeline as
 * the preload (http/ + openai/ + sessions + exporter), configured to parse
 * and record only: no header is injected or stamped, no policy, no cassette.
 * Records carry `capture: "uprobe"` and the target's pid and process name.
 *
 * Built only with XV_BPF (libbpf-dev, bpftool, clang and the kernel's BTF
 * present at build time). Single-threaded API (the CLI's).
 */
#ifndef XV_OBSERVE_H
#define XV_OBSERVE_H

#include <stddef.h>
#include <sys/types.h>

struct xv_observe_opts {
    const pid_t *pids;        /* processes to attach to (--pid), may be empty */
    size_t npids;
    char *const *cmd;         /* command to start and observe (after --), or NULL */
    const char *trace_file;   /* --trace-file, or NULL (the exporter's default) */
    int verbose;              /* libbpf messages and per-attachment lines on stderr */
};

/* Observe until every target exited or SIGINT/SIGTERM (then detach, leaving
 * the targets running). Returns the exit status for the CLI: the command's
 * own status with -- CMD, 0 otherwise; 2 when BPF cannot be used (one line
 * on stderr says why: permission, BTF, no TLS library found). */
int xv_observe_run(const struct xv_observe_opts *o);

/* Consumer side (feed.c): one captured event into the conn/ pipeline. */
struct xv_obs_hdr;
void xv_observe_feed_init(void);
void xv_observe_feed(const struct xv_obs_hdr *h, const char *data);
/* Process tgid replaced its image (execve): its connections are gone. */
void xv_observe_feed_exec(unsigned tgid);
/* End every connection still open (targets gone or detaching). */
void xv_observe_feed_end_all(const char *why);

#endif
