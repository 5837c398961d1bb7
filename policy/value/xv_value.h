/*
 * value/xv_value.h — the Rego value model shared by the evaluator and the builtins.
 *
 * ===================================================================
 *  THE OWNERSHIP RULE (the only one):
 *    Functions BORROW every value argument, and every `struct xv_value *`
 *    a function RETURNS is a NEW REFERENCE the caller owns and releases
 *    with xv_val_decref().
 *  Consequences: a container that keeps an argument (xv_val_array_push,
 *  xv_val_object_set, xv_val_set_add) takes its own reference, so the caller still
 *  drops its own. Element access goes through the XV_* macros below,
 *  which are plain field reads, not functions: what they yield is
 *  borrowed from the container and lives as long as the container.
 * ===================================================================
 *
 * Invariants:
 *  - Types order canonically as in OPA: null < boolean < number < string <
 *    array < object < set (the enum order below), then by value.
 *  - Objects keep keys sorted by xv_val_compare and unique; sets keep elements
 *    sorted and unique. Keys may be any value.
 *  - A value may be modified (push/set/add) only by a holder of its only
 *    reference (refcnt == 1, not frozen). Shared values are immutable.
 *  - Numbers are exact: int64 when it fits, GMP mpz for bigger integers and
 *    a GMP mpq rational for non-integers (always with a terminating decimal
 *    expansion; inexact quotients such as 1/3 are rounded to the nearest
 *    double first). The source text of a parsed number is kept for JSON
 *    output ("1.0" stays "1.0"); comparisons are by numeric value.
 *  - Strings are UTF-8 bytes; their hash and code-point count are cached.
 *
 * Thread safety: reference counts are NOT atomic. A value reachable from more
 * than one thread must be frozen (xv_val_freeze): frozen values ignore
 * xv_val_incref/xv_val_decref, so compiled policies and their data can be shared by
 * every thread while each evaluation's own values stay thread-local.
 */
#ifndef XV_VALUE_H
#define XV_VALUE_H

#include <stddef.h>
#include <stdint.h>

#include <gmp.h>

#include "xv_common.h"

/* Canonical type order (OPA's): compare types by these numbers first. */
enum xv_type {
    XV_T_NULL = 0,
    XV_T_BOOL = 1,
    XV_T_NUMBER = 2,
    XV_T_STRING = 3,
    XV_T_ARRAY = 4,
    XV_T_OBJECT = 5,
    XV_T_SET = 6,
};

/* Internal number representations (struct xv_value.sub for numbers). */
enum xv_num_kind {
    XV_NUM_INT = 0, /* u.num.i holds the value */
    XV_NUM_BIG = 1, /* u.num.z: integer outside int64 */
    XV_NUM_RAT = 2, /* u.num.q: non-integer with a terminating decimal expansion */
};

#define XV_REF_FROZEN UINT32_MAX /* refcnt of frozen (immortal) values */

struct xv_value {
    uint32_t refcnt; /* XV_REF_FROZEN for frozen/static values */
    uint8_t type;    /* enum xv_type */
    uint8_t sub;     /* numbers: enum xv_num_kind; others: 0 */
    uint16_t flags;  /* internal bookkeeping */
    uint32_t hash;   /* cached hash, 0 = not computed yet */
    union {
        int b; /* XV_T_BOOL: 0 or 1 */
        struct {
            int64_t i;     /* XV_NUM_INT */
            mpz_t *z;      /* XV_NUM_BIG, owned */
            mpq_t *q;      /* XV_NUM_RAT, owned, canonical (gcd 1, den > 1) */
            char *text;    /* original source text or NULL, owned, NUL-terminated */
        } num;
        struct {
            size_t len;    /* bytes, excluding the trailing NUL */
            int64_t ncp;   /* code points, -1 until counted */
            char *s;       /* points just past the struct; NUL-terminated */
        } str;
        struct {
            size_t len;                 /* elements in use */
            size_t cap;                 /* allocated */
            struct xv_value **items;    /* owned references */
        } arr;                          /* XV_T_ARRAY and XV_T_SET (sorted) */
        struct {
            size_t len;                 /* entries in use */
            size_t cap;                 /* allocated */
            struct xv_value **keys;     /* sorted, unique, owned references */
            struct xv_value **vals;     /* vals[i] belongs to keys[i], owned (in keys' block) */
        } obj;
    } u;
};

/* ---- borrowed element access (plain field reads; see THE RULE) ---- */
#define XV_TYPE(v) ((enum xv_type)(v)->type)
#define XV_BOOLV(v) ((v)->u.b)
#define XV_STR(v) ((const char *)(v)->u.str.s)
#define XV_STRLEN(v) ((v)->u.str.len)
#define XV_ARR_LEN(v) ((v)->u.arr.len)
#define XV_ARR_ITEM(v, i) ((v)->u.arr.items[(i)])
#define XV_SET_LEN(v) ((v)->u.arr.len)
#define XV_SET_ITEM(v, i) ((v)->u.arr.items[(i)])
#define XV_OBJ_LEN(v) ((v)->u.obj.len)
#define XV_OBJ_KEY(v, i) ((v)->u.obj.keys[(i)])
#define XV_OBJ_VAL(v, i) ((v)->u.obj.vals[(i)])
#define XV_IS(v, t) ((v) && (v)->type == (t))

/* ---- reference counting ---- */
static inline struct xv_value *xv_val_incref(struct xv_value *v)
{
    if (v && v->refcnt != XV_REF_FROZEN)
        v->refcnt++;
    return v;
}
void xv_val_free_(struct xv_value *v); /* internal: frees when the count hits 0 */
static inline void xv_val_decref(struct xv_value *v)
{
    if (v && v->refcnt != XV_REF_FROZEN && --v->refcnt == 0)
        xv_val_free_(v);
}

/* Make v and everything reachable from it immortal and shareable across
 * threads. Every value that was not frozen before is appended to *list
 * (a growable array the caller owns) so xv_val_free_frozen can release the
 * lot later. Returns 0, or XV_E_NOMEM. */
struct xv_frozen_list {
    struct xv_value **v; /* owned array of frozen values */
    size_t len, cap;     /* in use / allocated */
};
int xv_val_freeze(struct xv_value *v, struct xv_frozen_list *list);
/* Free every value recorded in list (they must not be used afterwards). */
void xv_val_free_frozen(struct xv_frozen_list *list);

/* ---- scalars ---- */
struct xv_value *xv_val_null(void);            /* static singleton */
struct xv_value *xv_val_bool(int b);           /* static singletons */
struct xv_value *xv_val_int(int64_t i);
/* A number from Rego/JSON number text (e.g. "-1.5e3"). NULL if malformed or
 * absurd (exponent beyond +-100000). The text is kept for JSON output. */
struct xv_value *xv_val_number_parse(const char *text, size_t len);
struct xv_value *xv_val_number_from_double(double d); /* NULL for NaN/Inf */
struct xv_value *xv_val_number_from_mpz(const mpz_t z);
/* From any rational; non-terminating expansions are rounded to a double. */
struct xv_value *xv_val_number_from_mpq(const mpq_t q);

/* Number queries (v must be a number). */
int xv_val_number_is_int(const struct xv_value *v);
/* 0 and *out set when v is an integer fitting int64; -1 otherwise. */
int xv_val_number_get_int64(const struct xv_value *v, int64_t *out);
double xv_val_number_get_double(const struct xv_value *v);
void xv_val_number_get_mpq(const struct xv_value *v, mpq_t out); /* out initialised by caller */
/* Integer part (truncated) into an initialised mpz. */
void xv_val_number_get_mpz(const struct xv_value *v, mpz_t out);
int xv_val_number_cmp(const struct xv_value *a, const struct xv_value *b);

/* Exact arithmetic. Return NULL only for the errors named. */
struct xv_value *xv_val_num_add(const struct xv_value *a, const struct xv_value *b);
struct xv_value *xv_val_num_sub(const struct xv_value *a, const struct xv_value *b);
struct xv_value *xv_val_num_mul(const struct xv_value *a, const struct xv_value *b);
struct xv_value *xv_val_num_div(const struct xv_value *a, const struct xv_value *b); /* NULL: b == 0 */
/* Remainder of integers with the sign of a (Go big.Int.Rem). NULL: b == 0
 * or a non-integer operand (caller distinguishes with xv_val_number_is_int). */
struct xv_value *xv_val_num_rem(const struct xv_value *a, const struct xv_value *b);
struct xv_value *xv_val_num_neg(const struct xv_value *a);
struct xv_value *xv_val_num_abs(const struct xv_value *a);
struct xv_value *xv_val_num_floor(const struct xv_value *a);
struct xv_value *xv_val_num_ceil(const struct xv_value *a);
struct xv_value *xv_val_num_round(const struct xv_value *a); /* half away from zero */

/* ---- strings ---- */
struct xv_value *xv_val_string(const char *s, size_t len);
struct xv_value *xv_val_cstring(const char *s);
struct xv_value *xv_val_string_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Code points in the string (invalid UTF-8 bytes count one each, as U+FFFD). */
size_t xv_val_string_cp_count(struct xv_value *v);
/* (UTF-8 code points: value/buf.h, built on common/utf8.c.) */

/* ---- arrays ---- */
struct xv_value *xv_val_array_new(size_t cap_hint);
int xv_val_array_push(struct xv_value *arr, struct xv_value *item); /* 0 / XV_E_NOMEM */

/* ---- sets ---- */
struct xv_value *xv_val_set_new(size_t cap_hint);
int xv_val_set_add(struct xv_value *set, struct xv_value *item);   /* keeps order, dedups */
int xv_val_set_contains(const struct xv_value *set, const struct xv_value *item);
/* Set of the array's (or set's) elements. */
struct xv_value *xv_val_set_from_array(const struct xv_value *arr);

/* ---- objects ---- */
struct xv_value *xv_val_object_new(size_t cap_hint);
/* Insert or replace key -> val. 0 / XV_E_NOMEM. */
int xv_val_object_set(struct xv_value *obj, struct xv_value *key, struct xv_value *val);
int xv_val_object_set_str(struct xv_value *obj, const char *key, struct xv_value *val);
/* The shared, frozen string for an object key (the table xv_val_object_set_str
 * uses), to set with xv_val_object_set without hashing the name each time.
 * Borrowed and immortal; NULL when the name is too long or the table has no
 * room for it (then set by name). */
struct xv_value *xv_val_key(const char *key);
/* Index of key (use XV_OBJ_VAL to read it) or -1. */
long xv_val_object_find(const struct xv_value *obj, const struct xv_value *key);
long xv_val_object_find_str(const struct xv_value *obj, const char *key, size_t len);
/* Index of item in a sorted set or -1. */
long xv_val_set_find(const struct xv_value *set, const struct xv_value *item);

/* A shallow copy of a container (fresh, refcnt 1; elements shared). */
struct xv_value *xv_val_copy(const struct xv_value *v);

/* ---- comparison, hashing ---- */
int xv_val_compare(const struct xv_value *a, const struct xv_value *b); /* <0, 0, >0 */
int xv_val_equal(const struct xv_value *a, const struct xv_value *b);
uint32_t xv_val_hash(struct xv_value *v);
/* "null", "boolean", "number", "string", "array", "object", "set". */
const char *xv_val_type_name(const struct xv_value *v);

/* ---- text ---- */
enum {
    XV_JSON_HTML_ESCAPE = 1, /* escape < > & like Go's encoding/json */
    XV_JSON_PRETTY = 2,      /* two-space indented output */
};
/* Parse one JSON document (whole buffer, surrounding whitespace allowed).
 * 0 and *out on success; XV_E_PARSE with a message in err otherwise. */
int xv_val_json_parse(const char *s, size_t len, struct xv_value **out, char *err, size_t errlen);
/* Serialise as JSON: sets become arrays in canonical order; objects with
 * non-string keys get their keys serialised as JSON text. */
int xv_val_json_write(struct xv_buf *b, const struct xv_value *v, int flags);
/* Rego term text as OPA prints it: {"a": 1}, {1, 2}, set(), "s". */
int xv_val_rego_write(struct xv_buf *b, const struct xv_value *v);
/* Number text: original text when known, else the exact decimal. */
int xv_val_number_write(struct xv_buf *b, const struct xv_value *v);
/* Go strconv.Quote-like quoting of raw bytes (JSON escapes, no HTML escape). */
int xv_val_json_write_string(struct xv_buf *b, const char *s, size_t len, int flags);
/* Caller owns the NUL-terminated JSON text (free()); NULL on failure. */
char *xv_val_json_dump(const struct xv_value *v, int flags);

#endif
