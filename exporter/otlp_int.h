/*
 * otlp_int.h — what the OTLP output's files share (not public).
 *
 * The OTLP output is the exporter's second sink (SPEC §7): records become
 * OTLP spans (GenAI semantic conventions), are sent with HTTP/1.1 POST over
 * plain TCP from the exporter thread, retried with backoff, and spooled to
 * disk when they cannot be sent; spooled requests are replayed later.
 *
 *   otlp_config.c  environment → struct xv_exp_otlp_cfg (immutable, refcounted)
 *   otlp_encode.c  record → span; protobuf and OTLP/JSON request bodies
 *   otlp_genai.c   record fields → GenAI semantic-convention attributes
 *   otlp_http.c    minimal HTTP/1.1 client (connect/send/read with a deadline), gzip
 *   otlp_spool.c   spool directory: write, size cap, atomic claim, release
 *   otlp.c         the sink: batching, retries, spooling, replay, fork, shutdown
 *
 * Thread safety: a struct xv_exp_otlp_cfg is immutable once published and is
 * only used through a reference (xv_exp_otlp_cfg_ref/unref). Encoders and the
 * HTTP client use no shared state (a call's span id is derived from its
 * trace id, so no table links tool steps to their call). Spool functions may run on several threads and processes
 * at once: every file appears by rename and is claimed by rename.
 */
#ifndef XV_OTLP_INT_H
#define XV_OTLP_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "xv_common.h"

#define XV_OTLP_REQ_SOFT_MAX ((size_t)1 << 20)   /* body bytes per request (one span may exceed) */
#define XV_OTLP_REQ_SPANS_MAX 512u               /* spans per request */
#define XV_OTLP_SPAN_MAX ((size_t)8 << 20)       /* one encoded span, hard limit */
#define XV_OTLP_RESP_HEAD_MAX 16384u             /* response status line + headers */
#define XV_OTLP_SPOOL_DEFAULT_MAX ((uint64_t)64 << 20)  /* spool bytes on disk */
#define XV_OTLP_SPOOL_FILES_MAX 20000u           /* spool files; oldest dropped beyond */
#define XV_OTLP_DEFAULT_TIMEOUT_MS 10000u        /* OTEL_EXPORTER_OTLP_TIMEOUT default */

enum xv_exp_otlp_proto { XV_OTLP_PROTOBUF = 0, XV_OTLP_JSON = 1 };

/* One resource attribute (OTEL_RESOURCE_ATTRIBUTES), both owned. */
struct xv_exp_otlp_kv {
    char *key;
    char *value;
};

/* Everything the environment said; immutable after xv_exp_otlp_cfg_from_env. */
struct xv_exp_otlp_cfg {
    atomic_int refs;               /* references; freed at 0 */
    char *host;                    /* endpoint host, no brackets (owned) */
    char *port;                    /* endpoint port as text (owned) */
    char *host_header;             /* value of the Host header (owned) */
    char *path;                    /* request target, e.g. "/v1/traces" (owned) */
    int tls;                       /* https:// (through a dlopen'ed libssl.so.3) */
    char *ca_file;                 /* OTEL_EXPORTER_OTLP_(TRACES_)CERTIFICATE (owned) or NULL */
    enum xv_exp_otlp_proto proto;      /* body encoding */
    int gzip;                      /* Content-Encoding: gzip */
    uint64_t timeout_ms;           /* budget per batch (all attempts together) */
    char *headers;                 /* extra header lines, each "k: v\r\n" (owned, may be "") */
    char *service_name;            /* resource service.name (owned) */
    char *exe_name;                /* process.executable.name (owned), NULL if unknown */
    int capture_content;           /* GenAI content attributes opted in */
    struct xv_exp_otlp_kv *res;        /* OTEL_RESOURCE_ATTRIBUTES minus service.name (owned) */
    size_t nres;                   /* entries in res */
    char *spool_dir;               /* spool directory (owned); NULL: no spool (no home) */
    uint64_t spool_max;            /* spool size cap in bytes */
};

/* Read the OTEL_* / XENOVIA_SPOOL_DIR environment. Returns a new config
 * (refs = 1; caller owns it, release with xv_exp_otlp_cfg_unref) when OTLP is
 * configured and usable; NULL when it is not configured, or configured
 * unusably (https, bad URL) — then one stderr line says why and the file
 * output is used. Bad values of optional variables get one line each and
 * their default. May allocate; does no I/O. */
struct xv_exp_otlp_cfg *xv_exp_otlp_cfg_from_env(void);
struct xv_exp_otlp_cfg *xv_exp_otlp_cfg_ref(struct xv_exp_otlp_cfg *c);
void xv_exp_otlp_cfg_unref(struct xv_exp_otlp_cfg *c);

/* Percent-decode "k=v,k2=v2" (W3C baggage-like, as OTEL_*_HEADERS and
 * OTEL_RESOURCE_ATTRIBUTES use). Calls `fn` per pair with decoded,
 * trimmed, NUL-terminated key and value. Returns 0, or XV_E_PARSE when a
 * member has no '=' or an empty key (the valid members are still passed). */
int xv_exp_otlp_parse_pairs(const char *s, int (*fn)(void *ud, const char *k, const char *v),
                        void *ud);

/* ---- otlp_encode.c ---- */

/* Encoded spans of one request, in wire order. `frags` holds every span:
 * for protobuf each is already wrapped as ScopeSpans field 2 (tag + length
 * + Span); for JSON each is one JSON object, separated by ','. */
struct xv_exp_otlp_batch {
    struct xv_buf frags;           /* encoded spans */
    size_t nspans;                 /* spans in frags */
};

/* The semantic-conventions release the spans follow (ResourceSpans and
 * ScopeSpans schema_url). */
#define XV_OTLP_SCHEMA_URL "https://opentelemetry.io/schemas/1.41.0"

/* Encode one record as a span and append it to `b`. `content`: the
 * captured text goes into the GenAI content attributes (opt-in; else no
 * captured text is encoded at all). Returns 0; 1 when the record is no
 * span of its own (a tool_result step) and nothing was appended; or a
 * negative code (record not encodable: not an object, out of memory,
 * bigger than XV_OTLP_SPAN_MAX). Thread-safe. */
int xv_exp_otlp_encode_span(enum xv_exp_otlp_proto proto, int content, const cJSON *record,
                            struct xv_exp_otlp_batch *b);

/* A record's trace id (hyphenated UUID or 32 hex digits, not all zero)
 * into its 16 bytes. 0 or -1. */
int xv_exp_otlp_parse_trace_id(const char *s, uint8_t out[16]);
/* A W3C traceparent header value into its trace id and parent span id.
 * 0 or -1 (invalid: the span then keeps the call's own trace). */
int xv_exp_otlp_parse_traceparent(const char *s, uint8_t tid[16], uint8_t psid[8]);

/* Attribute writer for both encodings: protobuf KeyValue fields appended
 * to `pb` as field `field`, or OTLP/JSON objects appended to `jattrs`. */
struct xv_exp_otlp_emit {
    enum xv_exp_otlp_proto proto;  /* which encoding */
    struct xv_buf *pb;             /* protobuf: the message being written */
    unsigned field;                /* protobuf: field number of attributes */
    cJSON *jattrs;                 /* JSON: the attributes array */
    int rc;                        /* first error (later calls do nothing) */
};
/* One attribute each; a NULL string value writes nothing; a non-finite
 * double writes nothing; strarr writes the string members of `arr`. */
void xv_exp_otlp_attr_strn(struct xv_exp_otlp_emit *e, const char *k, const char *v, size_t n);
void xv_exp_otlp_attr_str(struct xv_exp_otlp_emit *e, const char *k, const char *v);
void xv_exp_otlp_attr_int(struct xv_exp_otlp_emit *e, const char *k, int64_t v);
void xv_exp_otlp_attr_double(struct xv_exp_otlp_emit *e, const char *k, double v);
void xv_exp_otlp_attr_bool(struct xv_exp_otlp_emit *e, const char *k, int v);
void xv_exp_otlp_attr_strarr(struct xv_exp_otlp_emit *e, const char *k, const cJSON *arr);

/* ---- otlp_genai.c ---- */

/* gen_ai.operation.name for a record's request_type. Static string. */
const char *xv_exp_otlp_operation(const char *request_type);
/* The span attributes of a record (call, or tool step when `step`), per
 * the GenAI conventions; captured text only when `content`. */
void xv_exp_otlp_attrs_from_record(struct xv_exp_otlp_emit *e, const cJSON *r, int step,
                                   int content);

/* Wrap a batch into a complete ExportTraceServiceRequest body (resource
 * from `cfg` and getpid()). Caller owns *out (free()). Returns 0 or a
 * negative code. */
int xv_exp_otlp_encode_request(const struct xv_exp_otlp_cfg *cfg, const struct xv_exp_otlp_batch *b,
                           char **out, size_t *out_len);

/* Parse "YYYY-MM-DDTHH:MM:SS[.frac]Z" into Unix nanoseconds; 0 on error. */
uint64_t xv_exp_otlp_parse_time(const char *s);

/* No-ops since span ids are derived from trace ids (a call's span id is
 * the low 64 bits of its trace id); kept so the push and fork paths need
 * no change. */
void xv_exp_otlp_note_call(const cJSON *record);
void xv_exp_otlp_span_map_reset(void);

/* ---- otlp_http.c ---- */

/* Result of one POST: rc 0 means a status line was read. */
struct xv_exp_otlp_resp {
    int status;                    /* HTTP status, 0 if none */
    int64_t retry_after_s;         /* Retry-After in seconds, -1 if absent/unparsable */
};

/* POST body to the configured endpoint; every step bounded by the
 * absolute CLOCK_MONOTONIC deadline. One connection per request
 * (Connection: close): no agent socket outlives the call, so the host can
 * never close or dup2 over a socket we still use later. Returns 0 when a
 * response status line was read (see resp), else a negative code (DNS,
 * connect, write, read, timeout). Never raises SIGPIPE. */
int xv_exp_otlp_http_post(const struct xv_exp_otlp_cfg *cfg, const char *content_type, const char *body,
                      size_t len, int gzipped, uint64_t deadline_ns, struct xv_exp_otlp_resp *resp);

/* poll() fd for `events` until the deadline (also capped by the hurry
 * deadline). 0 ready, -ETIMEDOUT, -errno. */
int xv_exp_otlp_wait_fd(int fd, short events, uint64_t deadline_ns);

/* gzip `in` (zlib, RFC 1952). Caller owns *out (free()). */
int xv_exp_otlp_gzip(const char *in, size_t len, char **out, size_t *out_len);

/* ---- otlp_tls.c (https through a dlopen'ed libssl.so.3) ---- */

/* Load libssl.so.3 once. 1 when usable; else 0 and *why says why. */
int xv_exp_otlp_tls_available(const char **why);
/* Handshake on connected socket fd (verifying the certificate and the
 * endpoint's host). *ssl is owned by the caller: xv_exp_otlp_tls_close. */
int xv_exp_otlp_tls_open(const struct xv_exp_otlp_cfg *cfg, int fd, uint64_t deadline_ns,
                         void **ssl);
int xv_exp_otlp_tls_write(void *ssl, int fd, const char *p, size_t n, uint64_t deadline_ns);
/* Bytes read (>0), 0 at the end of the stream, <0 on error. */
long xv_exp_otlp_tls_read(void *ssl, int fd, char *p, size_t n, uint64_t deadline_ns);
void xv_exp_otlp_tls_close(void *ssl);

/* ---- otlp_spool.c ---- */

/* Spool file extensions by encoding. */
#define XV_OTLP_EXT_PB "otlp-pb"
#define XV_OTLP_EXT_JSON "otlp-json"

/* Write one uncompressed request body as a new spool file (mode 0600,
 * directory made 0700), then enforce the caps: oldest files are removed
 * beyond `max_bytes` / XV_OTLP_SPOOL_FILES_MAX and their spans added to
 * *dropped_spans. Returns 0 or a negative code. */
int xv_exp_otlp_spool_write(const char *dir, enum xv_exp_otlp_proto proto, const char *body, size_t len,
                        size_t nspans, uint64_t max_bytes, uint64_t *dropped_spans);

/* A claimed spool file: renamed to "<name>.claim-<pid>" by this process. */
struct xv_exp_otlp_claim {
    char path[4096];               /* claimed file */
    char orig[4096];               /* its unclaimed name */
    enum xv_exp_otlp_proto proto;      /* encoding of its body */
    size_t nspans;                 /* spans it holds */
};

/* Claim the oldest spool file (atomically: rename; a file another process
 * claimed first is skipped). Claims left by dead processes are released
 * first. Returns 1 with *cl filled, 0 when nothing is left, <0 on error. */
int xv_exp_otlp_spool_claim(const char *dir, struct xv_exp_otlp_claim *cl);
/* The same for up to `max` files in one directory scan (oldest first);
 * returns how many were claimed (cl[0..n)), or <0. */
int xv_exp_otlp_spool_claim_many(const char *dir, struct xv_exp_otlp_claim *cl, size_t max);

/* Read a claimed file (at most `max` bytes). Caller owns *out (free()). */
int xv_exp_otlp_spool_read(const struct xv_exp_otlp_claim *cl, size_t max, char **out, size_t *len);

/* Give a claim back (rename to its original name) or finish it (unlink). */
void xv_exp_otlp_spool_release(const struct xv_exp_otlp_claim *cl);
void xv_exp_otlp_spool_done(const struct xv_exp_otlp_claim *cl);

/* ---- otlp.c: the sink, as exporter.c uses it ---- */

/* Read the environment and publish the config (replacing the previous
 * one). Returns 1 when OTLP is on, 0 when not. Caller: configure_locked. */
int xv_exp_otlp_configure(void);

/* Exporter thread: encode, send (retries, backoff, Retry-After) and spool
 * what cannot be sent; then replay the spool if the collector answered.
 * Records are borrowed. Returns how many records were delivered or
 * spooled (the rest could not be encoded or stored). */
size_t xv_exp_otlp_export(cJSON *const *recs, size_t n);

/* Any thread (the direct path): encode and spool, no network. Records are
 * borrowed. Returns how many were spooled. */
size_t xv_exp_otlp_spool_records(cJSON *const *recs, size_t n);

/* From now on no wait may pass `deadline_ns` (CLOCK_MONOTONIC): retries
 * stop and what is left is spooled. Set by xv_exp_shutdown. */
void xv_exp_otlp_hurry(uint64_t deadline_ns);

/* min(d, the hurry deadline); used by the HTTP client's waits. */
uint64_t xv_exp_otlp_cap_deadline(uint64_t d);

/* A flush's hurry: like xv_exp_otlp_hurry, but only when none is set;
 * returns a token for xv_exp_otlp_hurry_end (0: nothing was set). end
 * clears the deadline again unless a shutdown replaced it meanwhile. */
uint64_t xv_exp_otlp_hurry_begin(uint64_t deadline_ns);
void xv_exp_otlp_hurry_end(uint64_t token);

/* Fork child: fresh locks, no hurry, no down-state; the config is kept. */
void xv_exp_otlp_atfork_child(void);

/* Counters since configure (spans). */
void xv_exp_otlp_stats(uint64_t *sent, uint64_t *spooled, uint64_t *replayed, uint64_t *dropped);

#endif
