/*
 * plan.c — decide whether a function's entry can be patched and build its
 * trampoline: the instructions displaced by the 5-byte entry jump,
 * re-encoded for the trampoline's address, then an absolute jump back.
 *
 * The decoder/encoder is Zydis 4 (Debian's libzydis-dev), loaded with
 * dlopen() the first time a program with compiled-in OpenSSL is seen: the
 * agent never maps it into other hosts. Zydis re-encodes relative branches
 * and RIP-relative operands for a new address (its "absolute" encoder);
 * Capstone 4 only decodes (see docs/dependencies.md).
 *
 * Refused (the function stays untouched):
 *  - a window instruction Zydis cannot decode or cannot re-encode at the
 *    trampoline (e.g. a rel8-only `loop`/`jrcxz`, a target beyond ±2 GiB);
 *  - a branch in the window whose target lies inside the window;
 *  - a branch anywhere in the function (decoded linearly over st_size)
 *    whose target lies inside the overwritten bytes, other than the entry;
 *  - a function shorter than the patch whose following bytes are not
 *    padding (NOP/INT3);
 *  - instructions that read or write %rip other than as a relative operand
 *    (none in practice) — caught by the encoder refusing them.
 *
 * Thread safety: the Zydis handle is loaded once under pthread_once;
 * xv_patch_plan is otherwise pure.
 */
#include "xv_patch.h"

#include <Zydis/Zydis.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* The Zydis entry points we use, resolved from libZydis.so.4.0. */
static struct {
    pthread_once_t once;
    int ok;
    char why[128];
    ZyanStatus (*dec_init)(ZydisDecoder *, ZydisMachineMode, ZydisStackWidth);
    ZyanStatus (*dec_full)(const ZydisDecoder *, const void *, ZyanUSize, ZydisDecodedInstruction *,
                           ZydisDecodedOperand *);
    ZyanStatus (*calc_abs)(const ZydisDecodedInstruction *, const ZydisDecodedOperand *, ZyanU64,
                           ZyanU64 *);
    ZyanStatus (*to_req)(const ZydisDecodedInstruction *, const ZydisDecodedOperand *, ZyanU8,
                         ZydisEncoderRequest *);
    ZyanStatus (*enc_abs)(ZydisEncoderRequest *, void *, ZyanUSize *, ZyanU64);
    const char *(*mnem)(ZydisMnemonic);
    ZydisDecoder dec;
} z = { .once = PTHREAD_ONCE_INIT };

static void z_load(void)
{
    /* DEEPBIND: Zydis's calls to its own exported functions must not bind
     * to a copy some host exports (see preload/zlib_shim.c); ASan refuses it. */
#if defined(__SANITIZE_ADDRESS__)
    void *h = dlopen("libZydis.so.4.0", RTLD_NOW | RTLD_LOCAL);
#else
    void *h = dlopen("libZydis.so.4.0", RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
#endif
    if (!h) {
        snprintf(z.why, sizeof z.why, "the x86-64 decoder libZydis.so.4.0 is not installed (Debian package libzydis4.0)");
        return;
    }
    z.dec_init = (ZyanStatus(*)(ZydisDecoder *, ZydisMachineMode, ZydisStackWidth))dlsym(h, "ZydisDecoderInit");
    *(void **)&z.dec_full = dlsym(h, "ZydisDecoderDecodeFull");
    *(void **)&z.calc_abs = dlsym(h, "ZydisCalcAbsoluteAddress");
    *(void **)&z.to_req = dlsym(h, "ZydisEncoderDecodedInstructionToEncoderRequest");
    *(void **)&z.enc_abs = dlsym(h, "ZydisEncoderEncodeInstructionAbsolute");
    *(void **)&z.mnem = dlsym(h, "ZydisMnemonicGetString");
    if (!z.dec_init || !z.dec_full || !z.calc_abs || !z.to_req || !z.enc_abs || !z.mnem ||
        ZYAN_FAILED(z.dec_init(&z.dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64))) {
        snprintf(z.why, sizeof z.why, "libZydis.so.4.0 lacks the expected functions");
        return; /* the handle stays open: harmless */
    }
    z.ok = 1;
}

int xv_patch_decoder_load(char *why, size_t cap)
{
    pthread_once(&z.once, z_load);
    if (!z.ok && why && cap)
        snprintf(why, cap, "%s", z.why);
    return z.ok ? 0 : -1;
}

static const char *mname(const ZydisDecodedInstruction *in)
{
    const char *s = z.mnem(in->mnemonic);
    return s ? s : "?";
}

/* Is operand i of a decoded instruction relative to %rip (branch target
 * or RIP-based memory)? */
static int op_is_rel(const ZydisDecodedOperand *op)
{
    if (op->type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
        return op->imm.is_relative;
    if (op->type == ZYDIS_OPERAND_TYPE_MEMORY)
        return op->mem.base == ZYDIS_REGISTER_RIP || op->mem.base == ZYDIS_REGISTER_EIP;
    return 0;
}

/* The branch target of a relative branch instruction, or 0. */
static uint64_t branch_target(const ZydisDecodedInstruction *in, const ZydisDecodedOperand *ops,
                              uint64_t at)
{
    if (!(in->attributes & ZYDIS_ATTRIB_IS_RELATIVE))
        return 0;
    for (unsigned i = 0; i < in->operand_count_visible; i++) {
        if (ops[i].type == ZYDIS_OPERAND_TYPE_IMMEDIATE && ops[i].imm.is_relative) {
            ZyanU64 t = 0;
            if (ZYAN_SUCCESS(z.calc_abs(in, &ops[i], at, &t)))
                return t;
        }
    }
    return 0;
}

/* Re-encode one window instruction for address `to`. Bytes written or -1. */
static int relocate(const ZydisDecodedInstruction *in, const ZydisDecodedOperand *ops,
                    uint64_t from, uint64_t to, unsigned char *out, size_t room)
{
    ZydisEncoderRequest req;
    memset(&req, 0, sizeof req);
    if (ZYAN_FAILED(z.to_req(in, ops, in->operand_count_visible, &req)))
        return -1;
    for (unsigned i = 0; i < in->operand_count_visible && i < ZYDIS_ENCODER_MAX_OPERANDS; i++) {
        if (!op_is_rel(&ops[i]))
            continue;
        ZyanU64 abs = 0;
        if (ZYAN_FAILED(z.calc_abs(in, &ops[i], from, &abs)))
            return -1;
        if (ops[i].type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
            req.operands[i].imm.u = abs;
        else
            req.operands[i].mem.displacement = (ZyanI64)abs;
    }
    /* let the encoder pick rel8/rel32 for the new distance */
    req.branch_type = ZYDIS_BRANCH_TYPE_NONE;
    req.branch_width = ZYDIS_BRANCH_WIDTH_NONE;
    ZyanUSize len = room;
    if (ZYAN_FAILED(z.enc_abs(&req, out, &len, to)))
        return -1;
    return (int)len;
}

/* Append `jmp *0(%rip); .quad target` (14 bytes, clobbers nothing). */
static int put_abs_jmp(unsigned char *out, size_t room, uint64_t target)
{
    if (room < 14)
        return -1;
    static const unsigned char op[6] = { 0xff, 0x25, 0, 0, 0, 0 };
    memcpy(out, op, 6);
    memcpy(out + 6, &target, 8);
    return 14;
}

static int is_padding(const ZydisDecodedInstruction *in)
{
    return in->mnemonic == ZYDIS_MNEMONIC_NOP || in->mnemonic == ZYDIS_MNEMONIC_INT3;
}

/* Scan the whole function for a branch into (addr, addr + XV_PATCH_JMP_LEN). */
static int scan_branches_in(const unsigned char *code, size_t avail, uint64_t addr, uint64_t size,
                            char *why, size_t cap)
{
    size_t end = size < avail ? (size_t)size : avail;
    size_t off = 0;
    while (off < end) {
        ZydisDecodedInstruction in;
        ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
        if (ZYAN_FAILED(z.dec_full(&z.dec, code + off, end - off, &in, ops)))
            break; /* data or an odd encoding: the rest is not checkable */
        uint64_t t = branch_target(&in, ops, addr + off);
        if (t >= addr && t < addr + XV_PATCH_JMP_LEN) {
            snprintf(why, cap, "a branch at +0x%zx jumps into the patched bytes (+0x%llx)", off,
                     (unsigned long long)(t - addr));
            return -1;
        }
        off += in.length;
    }
    return 0;
}

int xv_patch_plan(const unsigned char *code, size_t avail, uint64_t addr, uint64_t size,
                  uint64_t tramp_addr, struct xv_patch_plan *out, char *why, size_t cap)
{
    memset(out, 0, sizeof *out);
    if (xv_patch_decoder_load(why, cap) != 0)
        return -1;
    if (size == 0) {
        snprintf(why, cap, "its symbol has no size");
        return -1;
    }
    ZydisDecodedInstruction ins[XV_PATCH_JMP_LEN];
    ZydisDecodedOperand ops[XV_PATCH_JMP_LEN][ZYDIS_MAX_OPERAND_COUNT];
    unsigned n = 0, off = 0;
    while (off < XV_PATCH_JMP_LEN) {
        if (ZYAN_FAILED(z.dec_full(&z.dec, code + off, avail - off, &ins[n], ops[n]))) {
            snprintf(why, cap, "undecodable instruction at +0x%x", off);
            return -1;
        }
        if (off >= size && !is_padding(&ins[n])) {
            snprintf(why, cap, "the function is %llu bytes and not followed by padding",
                     (unsigned long long)size);
            return -1;
        }
        off += ins[n].length;
        n++;
    }
    out->win = off;
    /* A branch in the window may not land inside the window (its target
     * would be the trampoline's copy, not a fixed address). */
    unsigned pos = 0, at = 0;
    for (unsigned i = 0; i < n; i++) {
        uint64_t t = branch_target(&ins[i], ops[i], addr + at);
        if (t >= addr && t < addr + out->win) {
            snprintf(why, cap, "%s at +0x%x branches inside the displaced bytes", mname(&ins[i]), at);
            return -1;
        }
        int rel = 0;
        for (unsigned k = 0; k < ins[i].operand_count_visible; k++)
            rel |= op_is_rel(&ops[i][k]);
        /* hidden %rip uses other than relative operands cannot be moved */
        for (unsigned k = ins[i].operand_count_visible; k < ins[i].operand_count; k++)
            if (ops[i][k].type == ZYDIS_OPERAND_TYPE_MEMORY && ops[i][k].mem.base == ZYDIS_REGISTER_RIP)
                rel = -1;
        if (rel < 0) {
            snprintf(why, cap, "%s at +0x%x uses %%rip implicitly", mname(&ins[i]), at);
            return -1;
        }
        if (rel) {
            int w = relocate(&ins[i], ops[i], addr + at, tramp_addr + pos, out->tramp + pos,
                             sizeof out->tramp - pos - 14);
            if (w < 0) {
                snprintf(why, cap, "%s at +0x%x cannot be relocated", mname(&ins[i]), at);
                return -1;
            }
            pos += (unsigned)w;
        } else {
            if (pos + ins[i].length > sizeof out->tramp - 14) {
                snprintf(why, cap, "trampoline too long");
                return -1;
            }
            memcpy(out->tramp + pos, code + at, ins[i].length);
            pos += ins[i].length;
        }
        at += ins[i].length;
    }
    pos += (unsigned)put_abs_jmp(out->tramp + pos, sizeof out->tramp - pos, addr + out->win);
    out->tramp_len = pos;
    return scan_branches_in(code, avail, addr, size, why, cap);
}
