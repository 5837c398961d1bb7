/*
 * xv_observe_event.h — the record layout shared by the BPF program
 * (tls.bpf.c) and its user-space consumer (observe.c). Plain fixed-width
 * types only, so both compilers agree on it.
 *
 * One ring-buffer record per event. Data events (TX: SSL_write*, RX:
 * SSL_read*) carry at most XV_OBS_CHUNK bytes; a longer call becomes several
 * records (offset/total say where each piece sits) up to XV_OBS_MAX_CHUNKS,
 * and what lies beyond is counted in `cut` and never copied.
 * `seq` is global (every record attempted, so a gap means the ring was
 * full); `conn_seq` counts the events of one (process, SSL*) pair.
 */
#ifndef XV_OBSERVE_EVENT_H
#define XV_OBSERVE_EVENT_H

#define XV_OBS_CHUNK 16384        /* bytes copied per record */
#define XV_OBS_SMALL 1024         /* records of small calls use this size */
#define XV_OBS_MAX_CHUNKS 256     /* per call: 4 MiB copied, the rest counted */

/* FORK: tgid forked; `ssl` holds the new task's id (a thread too: the
 * consumer tells). EXEC: tgid (a followed process) called execve. */
enum xv_obs_kind { XV_OBS_TX = 1, XV_OBS_RX = 2, XV_OBS_FREE = 3, XV_OBS_NEW = 4,
                   XV_OBS_FORK = 5, XV_OBS_EXEC = 6 };

/* Drop counters (array map "xv_counters"). */
enum xv_obs_counter {
    XV_OBS_C_EVENTS = 0,   /* records submitted */
    XV_OBS_C_DROPPED = 1,  /* records lost: ring buffer full */
    XV_OBS_C_DROP_BYTES = 2, /* plaintext bytes in those */
    XV_OBS_C_CUT_BYTES = 3,  /* plaintext bytes beyond the per-call cap */
    XV_OBS_C_COPY_FAIL = 4,  /* bpf_copy_from_user failed */
    XV_OBS_C_COUNT = 5
};

struct xv_obs_hdr {
    unsigned long long seq;
    unsigned long long conn_seq;
    unsigned long long ssl;
    unsigned long long ts_ns;
    unsigned int tgid;
    unsigned int tid;
    unsigned int kind;
    unsigned int len;      /* bytes in data[] */
    unsigned int offset;   /* of data[0] within the call's bytes */
    unsigned int total;    /* bytes the call moved (may exceed what was copied) */
    unsigned int cut;      /* on the call's last record: bytes never copied */
    unsigned int copy_fail;
};

#endif
