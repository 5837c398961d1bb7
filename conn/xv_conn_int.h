/*
 * Internal to conn/: the call queue entry, the connection struct and the
 * helpers the files of this module share. Not for use outside conn/.
 */
#ifndef XV_CONN_INT_H
#define XV_CONN_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "xv_common.h"
#include "xv_conn.h"
#include "xv_http.h"
#include "xv_openai.h"

#define XV_TRACE_ID_LEN 32 /* hex characters of a W3C-style 16-byte trace id */

/* One request/response exchange on a connection. */
struct xv_call {
    struct xv_call *next;          /* FIFO order on the connection */
    struct xv_openai_call *api;    /* NULL: not an API call (only framed) */
    char trace_id[XV_TRACE_ID_LEN + 1];
    char upstream_trace_id[XV_TRACE_ID_LEN * 2 + 1]; /* set when the upstream stamped one */
    uint64_t start_mono_ns;        /* request head seen */
    uint64_t start_wall_ns;
    int request_done;              /* request fully written */
    int response_started;          /* final (non-1xx) response head seen */
    int stamped;                   /* our trace header was added */
    char host[256];                /* Host header (without port) */
};

struct xv_conn {
    pthread_mutex_t mu;            /* guards everything below except mode/refs */
    atomic_int refs;               /* references: tables + running hooks */
    atomic_int mode;               /* enum xv_conn_mode; read lock-free */
    int kind;                      /* enum xv_conn_kind */
    int ended;                     /* xv_conn_end ran */
    struct xv_conn_peer peer;      /* where the stream goes */
    struct xv_http_parser *req;    /* TX parser (NULL until mode HTTP) */
    struct xv_http_parser *resp;   /* RX parser */
    struct xv_call *calls;         /* open calls, oldest first */
    struct xv_call *tx_call;       /* call whose request is being written */
    struct xv_buf out;             /* RX bytes ready for the app */
    struct xv_buf hold;            /* RX head bytes held until the head is complete */
    int rx_in_head;                /* the current RX feed segment is a held head */
    int rx_head_done;              /* on_head paused the parser at a held head's end */
    int rx_head_status;            /* status of that head */
    int rx_head_has_trace;         /* that head already carries X-Xenovia-Trace-Id */
    int rx_stamp;                  /* that head gets our trace line */
    char rx_stamp_id[XV_TRACE_ID_LEN + 1]; /* ... with this id (the call may already be
                                      recorded when the message has no body) */
    char pre[16];                  /* first TX bytes while the mode is undecided */
    size_t pre_len;
    struct xv_conn *reg_prev, *reg_next; /* registry of live connections */
};

/* record.c: build and export the trace record of a finished call. */
void xv_conn_record_emit(struct xv_conn *c, struct xv_call *call, const char *error);
void xv_conn_new_trace_id(char out[XV_TRACE_ID_LEN + 1]);

/* Provider name for a host (SPEC §5): openai, azure, xenovia, openai_compatible. */
const char *xv_conn_provider(const char *host);

void xv_conn_stat_add(int which);
enum { XV_STAT_CALLS, XV_STAT_RECORDS, XV_STAT_STAMPED, XV_STAT_PASS };

#endif
