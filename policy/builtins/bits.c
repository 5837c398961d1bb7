/*
 * builtins/bits.c — bits.and, bits.or, bits.xor, bits.negate, bits.lsh and
 * bits.rsh on arbitrary-precision integers.
 *
 * Invariant: operations work on GMP integers with two's-complement semantics
 * for negative numbers, as Go's big.Int does, so no width limit applies;
 * shifts are bounded so a policy cannot ask for an unbounded number.
 * Thread safety: reentrant.
 */
#include "builtins/helpers.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(v) XV_STR(v)
#define SL(v) XV_STRLEN(v)

static int int_operand(struct xv_bctx *ctx, struct xv_value *const *a, int pos, mpz_t out)
{
    const struct xv_value *v = a[pos - 1];
    if (!XV_IS(v, XV_T_NUMBER))
        return xv_bi_type_error(ctx, pos, "number", v);
    if (!xv_val_number_is_int(v))
        return xv_bi_operand_err(ctx, pos,
                                        "must be integer number but got floating-point number");
    xv_val_number_get_mpz(v, out);
    return 0;
}

enum bitop { B_AND, B_OR, B_XOR, B_NEG, B_LSH, B_RSH };

static int bits(struct xv_bctx *ctx, struct xv_value *const *a, enum bitop op,
                struct xv_value **out)
{
    mpz_t x, y, r;
    mpz_inits(x, y, r, NULL);
    int rc = int_operand(ctx, a, 1, x);
    if (rc == 0 && op != B_NEG)
        rc = int_operand(ctx, a, 2, y);
    if (rc == 0 && (op == B_LSH || op == B_RSH) && mpz_sgn(y) < 0)
        rc = xv_bi_operand_err(ctx, 2, "must be an unsigned integer number but got a "
                                              "negative integer");
    if (rc == 0 && (op == B_LSH) && mpz_cmp_ui(y, 1u << 20) > 0)
        rc = xv_bi_error(ctx, "shift too large");
    if (rc == 0) {
        switch (op) {
        case B_AND: mpz_and(r, x, y); break;
        case B_OR: mpz_ior(r, x, y); break;
        case B_XOR: mpz_xor(r, x, y); break;
        case B_NEG: mpz_com(r, x); break;
        case B_LSH: mpz_mul_2exp(r, x, mpz_get_ui(y)); break;
        case B_RSH:
            /* arithmetic shift: floor division, as big.Int.Rsh */
            if (mpz_fits_ulong_p(y))
                mpz_fdiv_q_2exp(r, x, mpz_get_ui(y));
            else
                mpz_set_si(r, mpz_sgn(x) < 0 ? -1 : 0);
            break;
        }
        rc = xv_bi_ret(ctx, xv_val_number_from_mpz(r), out);
    }
    mpz_clears(x, y, r, NULL);
    return rc;
}

BI_FN(bi_bits_and) { return bits(ctx, a, B_AND, out); }
BI_FN(bi_bits_or) { return bits(ctx, a, B_OR, out); }
BI_FN(bi_bits_xor) { return bits(ctx, a, B_XOR, out); }
BI_FN(bi_bits_negate) { return bits(ctx, a, B_NEG, out); }
BI_FN(bi_bits_lsh) { return bits(ctx, a, B_LSH, out); }
BI_FN(bi_bits_rsh) { return bits(ctx, a, B_RSH, out); }

const struct xv_builtin_def xv_bi_bits[] = {
    {"bits.and", 2, bi_bits_and, 0},
    {"bits.or", 2, bi_bits_or, 0},
    {"bits.xor", 2, bi_bits_xor, 0},
    {"bits.negate", 1, bi_bits_negate, 0},
    {"bits.lsh", 2, bi_bits_lsh, 0},
    {"bits.rsh", 2, bi_bits_rsh, 0},
    {NULL, 0, NULL, 0},
};
