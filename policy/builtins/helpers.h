/*
 * builtins/helpers.h — helpers shared by the builtin family files
 * (policy/builtins_*.c): operand checks with OPA's error texts, and the
 * family tables that builtins_table.c lists.
 *
 * Invariant: every helper follows xv_value.h's rule (arguments borrowed,
 * returned values are new references) and every error helper returns
 * XV_BI_ERROR so `return bi_...(...)` reads naturally.
 * Thread safety: all helpers are reentrant.
 */
#ifndef XV_POLICY_BUILTINS_INT_H
#define XV_POLICY_BUILTINS_INT_H

#include "value/buf.h"
#include "go/fmt.h"
#include "go/glob.h"
#include "go/regexp.h"
#include "builtins/registry.h"
#include "value/xv_value.h"

/* Family tables (one per builtins_<family>.c). */
extern const struct xv_builtin_def xv_bi_strings[];
extern const struct xv_builtin_def xv_bi_numbers[];
extern const struct xv_builtin_def xv_bi_crypto[];
extern const struct xv_builtin_def xv_bi_uuid[];
extern const struct xv_builtin_def xv_bi_regex[];
extern const struct xv_builtin_def xv_bi_glob[];
extern const struct xv_builtin_def xv_bi_json[];
extern const struct xv_builtin_def xv_bi_objects[];
extern const struct xv_builtin_def xv_bi_types[];
extern const struct xv_builtin_def xv_bi_sets[];
extern const struct xv_builtin_def xv_bi_array[];
extern const struct xv_builtin_def xv_bi_encoding[];
extern const struct xv_builtin_def xv_bi_time[];
extern const struct xv_builtin_def xv_bi_schema[];
extern const struct xv_builtin_def xv_bi_units[];
extern const struct xv_builtin_def xv_bi_deprecated[];
extern const struct xv_builtin_def xv_bi_rand[];
extern const struct xv_builtin_def xv_bi_semver[];
extern const struct xv_builtin_def xv_bi_bits[];
extern const struct xv_builtin_def xv_bi_net[];
extern const struct xv_builtin_def xv_bi_graph[];
extern const struct xv_builtin_def xv_bi_jwt[];
extern const struct xv_builtin_def xv_bi_aws[];
extern const struct xv_builtin_def xv_bi_http[];
extern const struct xv_builtin_def xv_bi_template[];
extern const struct xv_builtin_def xv_bi_x509[];
extern const struct xv_builtin_def xv_bi_graphql[];
extern const struct xv_builtin_def xv_bi_graphql_validate[];
extern const struct xv_builtin_def xv_bi_yaml[];

/* The signature every builtin has. */
#define BI_FN(name) \
    static int name(struct xv_bctx *ctx, struct xv_value *const *a, int nargs, struct xv_value **out)

/* OPA's operand errors are type errors: "operand 2 must be integer number but
 * got floating-point number" etc. (NewOperandErr). */
int xv_bi_operand_err(struct xv_bctx *ctx, int pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* NewOperandElementErr: "operand 1 must be array of strings but got array
 * containing number". */
int xv_bi_elem_err(struct xv_bctx *ctx, int pos, const struct xv_value *coll,
                          const struct xv_value *elem, const char *want);
/* Integer operand (IntOperand): a number with an integral value that fits
 * int64. Records OPA's error and returns XV_BI_ERROR otherwise. */
int xv_bi_int_arg(struct xv_bctx *ctx, struct xv_value *const *a, int pos, int64_t *out);
/* True when a number was written with a fraction or exponent ("1.0", "1e3"):
 * Go's json.Number.Int64 rejects those, so OPA treats them as floats. */
int xv_bi_num_is_float_text(const struct xv_value *v);

/* Set *out to a new string from a heap buffer taken from b; XV_BI_ERROR
 * "out of memory" if the buffer failed. */
int xv_bi_ret_buf(struct xv_bctx *ctx, struct xv_val_buf *b, struct xv_value **out);
/* Same for a malloc'd string (freed here). */
int xv_bi_ret_owned(struct xv_bctx *ctx, char *s, size_t len, struct xv_value **out);
/* A new value, or XV_BI_ERROR "out of memory" when v is NULL. */
int xv_bi_ret(struct xv_bctx *ctx, struct xv_value *v, struct xv_value **out);

/* Base64 (std or URL alphabet, with or without padding) appended to b. */
void xv_bi_b64_encode(struct xv_val_buf *b, const unsigned char *s, size_t n, bool url,
                             bool pad);
/* Go's padded base64 decoder (CR/LF skipped): appends to b; returns -1, or
 * the byte offset Go reports in "illegal base64 data at input byte N". */
long xv_bi_b64_decode(struct xv_val_buf *b, const char *s, size_t n, bool url);


/* Rego text of v (as OPA's Value.String()), appended to b. */
void xv_bi_rego_text(struct xv_val_buf *b, const struct xv_value *v);
/* JSON text of v appended to b (flags as xv_val_json_write). */
int xv_bi_json_text(struct xv_val_buf *b, const struct xv_value *v, int flags);

/* encoding.c: lower-case hex of s[0..n) appended to b; the value of one
 * hex digit (-1 if c is none). */
void xv_bi_hex_bytes(struct xv_val_buf *b, const unsigned char *s, size_t n);
int xv_bi_hexv(unsigned char c);

#endif
