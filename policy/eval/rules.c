/*
 * eval/rules.c — rule evaluation: complete rules, partial sets and objects,
 * functions' bodies, else chains and defaults, each rule's value cached per
 * evaluation; and the document at a node of the rule tree (rules merged
 * with the base data below it, conflicts reported as OPA reports them).
 *
 * Invariant: a cached value holds its own reference and is computed once
 * per evaluation (state 1 while computing catches recursion at run time).
 * Thread safety: per-evaluation state only (struct ev).
 */
#include "eval/frame.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- rule evaluation ---- */


static int kcomplete_val(struct ev *ev, struct k *self, V v)
{
    struct kcollect *kc = (struct kcollect *)self;
    kc->found = 1;
    if (!*kc->acc) {
        *kc->acc = xv_val_incref(v);
        return R_OK;
    }
    if (xv_val_equal(*kc->acc, v))
        return R_OK;
    if (kc->func)
        return xv_eval_raise(ev, kc->r->loc, "eval_conflict_error",
                     "functions must not produce multiple outputs for same inputs");
    return xv_eval_raise(ev, kc->r->loc, "eval_conflict_error",
                 "complete rules must not produce multiple outputs");
}

int xv_eval_k_complete_body(struct ev *ev, struct k *self, V unused)
{
    struct kcollect *kc = (struct kcollect *)self;
    struct kcollect k2 = *kc;
    k2.k.fn = kcomplete_val;
    int rc = xv_eval_term(ev, kc->env, kc->r->value, &k2.k);
    kc->found |= k2.found;
    return rc;
}

static int kset_val(struct ev *ev, struct k *self, V v)
{
    struct kcollect *kc = (struct kcollect *)self;
    kc->found = 1;
    return xv_val_set_add(*kc->acc, v) ? xv_eval_oom(ev) : R_OK;
}

static int kset_body(struct ev *ev, struct k *self, V unused)
{
    struct kcollect *kc = (struct kcollect *)self;
    struct kcollect k2 = *kc;
    k2.k.fn = kset_val;
    return xv_eval_term(ev, kc->env, kc->r->key, &k2.k);
}

/* Object rules: evaluate rest keys one by one then the value. */
struct kobj {
    struct k k;
    V *env;
    struct rule *r;
    V acc;         /* root object */
    V keys[16];    /* evaluated rest keys (borrowed) */
    int i;         /* next rest index */
};

/* Insert one solution of a partial object rule (or a multi-key ref head)
 * into the accumulated document, creating the nested objects its keys
 * name; a second, different value under one key is a conflict. */
static int obj_insert(struct ev *ev, struct kobj *ko, V leaf)
{
    V cur = ko->acc;
    struct rule *r = ko->r;
    int n = r->nrest;
    int is_set = r->kind == R_SET;
    for (int j = 0; j < n; j++) {
        V key = ko->keys[j];
        long idx = xv_val_object_find(cur, key);
        int last = j == n - 1;
        if (last && !is_set) {
            if (idx >= 0) {
                if (!xv_val_equal(XV_OBJ_VAL(cur, idx), leaf))
                    return xv_eval_raise(ev, r->loc, "eval_conflict_error", "object keys must be unique");
                return R_OK;
            }
            return xv_val_object_set(cur, key, leaf) ? xv_eval_oom(ev) : R_OK;
        }
        if (idx < 0) {
            V child = last ? xv_val_set_new(0) : xv_val_object_new(0);
            if (!child || xv_val_object_set(cur, key, child)) {
                xv_val_decref(child);
                return xv_eval_oom(ev);
            }
            xv_val_decref(child);
            idx = xv_val_object_find(cur, key);
        }
        V child = XV_OBJ_VAL(cur, idx);
        if (last) {
            if (child->type != XV_T_SET || child->refcnt != 1)
                return xv_eval_raise(ev, r->loc, "eval_conflict_error", "object keys must be unique");
            return xv_val_set_add(child, leaf) ? xv_eval_oom(ev) : R_OK;
        }
        if (child->type != XV_T_OBJECT || child->refcnt != 1)
            return xv_eval_raise(ev, r->loc, "eval_conflict_error", "object keys must be unique");
        cur = child;
    }
    return R_OK;
}

static int kobj_leaf(struct ev *ev, struct k *self, V v)
{
    return obj_insert(ev, (struct kobj *)self, v);
}

static int kobj_key(struct ev *ev, struct k *self, V v);

/* Evaluate the rule's i-th key term (then its value or set element),
 * enumerating each with its own continuation. */
static int kobj_step(struct ev *ev, struct kobj *ko)
{
    struct rule *r = ko->r;
    if (ko->i >= r->nrest) {
        struct kobj k2 = *ko;
        k2.k.fn = kobj_leaf;
        return xv_eval_term(ev, ko->env, r->kind == R_SET ? r->key : r->value, &k2.k);
    }
    struct kobj k2 = *ko;
    k2.k.fn = kobj_key;
    return xv_eval_term(ev, ko->env, r->rest[ko->i], &k2.k);
}

static int kobj_key(struct ev *ev, struct k *self, V v)
{
    struct kobj *ko = (struct kobj *)self;
    struct kobj k2 = *ko;
    k2.keys[ko->i] = v;
    k2.i = ko->i + 1;
    return kobj_step(ev, &k2);
}

static int kobj_body(struct ev *ev, struct k *self, V unused)
{
    struct kobj *ko = (struct kobj *)self;
    struct kobj k2 = *ko;
    k2.i = 0;
    return kobj_step(ev, &k2);
}

/* One unit of the evaluation's budget: past max_steps, or (checked every
 * 1024 steps) past the deadline, the evaluation is cancelled. The slow
 * path of xv_eval_step (frame.h), which has counted the step already. */
int xv_eval_step_check(struct ev *ev, struct xv_loc loc)
{
    if (ev->steps > ev->max_steps)
        return xv_eval_raise(ev, loc, "eval_cancel_error",
                     "evaluation exceeded its step budget (%llu steps)",
                     (unsigned long long)ev->max_steps);
    /* the clock is read every 1024 steps only */
    if (ev->deadline_ns && (ev->steps & 1023) == 0 && xv_now_mono_ns() > ev->deadline_ns)
        return xv_eval_raise(ev, loc, "eval_cancel_error",
                                  "evaluation exceeded its time budget");
    return R_OK;
}

/* Merge two documents produced for the same path by different rules:
 * objects merge key by key, sets unite, equal values agree; anything else
 * is a conflict (NULL). New reference. */
static V merge_docs(V a, V b, int depth)
{
    if (xv_val_equal(a, b))
        return xv_val_incref(a);
    if (a->type == XV_T_SET && b->type == XV_T_SET && depth <= 0) {
        V r = xv_val_copy(a);
        for (size_t i = 0; r && i < XV_SET_LEN(b); i++)
            xv_val_set_add(r, XV_SET_ITEM(b, i));
        return r;
    }
    /* below the rule's key path the values belong to one rule: no injection */
    if (a->type != XV_T_OBJECT || b->type != XV_T_OBJECT || depth <= 0)
        return NULL;
    V r = xv_val_copy(a);
    for (size_t i = 0; r && i < XV_OBJ_LEN(b); i++) {
        long at = xv_val_object_find(r, XV_OBJ_KEY(b, i));
        V m = at >= 0 ? merge_docs(XV_OBJ_VAL(r, at), XV_OBJ_VAL(b, i), depth - 1)
                      : xv_val_incref(XV_OBJ_VAL(b, i));
        if (!m) {
            xv_val_decref(r);
            return NULL;
        }
        xv_val_object_set(r, XV_OBJ_KEY(b, i), m);
        xv_val_decref(m);
    }
    return r;
}

/* A package or intermediate node: an object of its children's documents
 * over base. */
static int package_value(struct ev *ev, struct node *n, V base, V *out)
{
    if (n->is_func)
        return 0;
    V obj = base && base->type == XV_T_OBJECT ? xv_val_copy(base) : xv_val_object_new(n->nkids);
    if (!obj)
        return xv_eval_oom(ev);
    if (base && base->type != XV_T_OBJECT && n->nkids == 0) {
        xv_val_decref(obj);
        *out = xv_val_incref(base);
        return 0;
    }
    for (int c = 0; c < n->nkids; c++) {
        struct node *ch = n->kids[c];
        if (ch->is_func || ((ch->nrules || ch->dflt) && xv_eval_lookup(base, ch->key)))
            continue;
        V cv = NULL;
        if (xv_eval_node_value(ev, ch, xv_eval_lookup(base, ch->key), &cv)) {
            xv_val_decref(obj);
            return -1;
        }
        if (cv) {
            xv_val_object_set(obj, ch->key, cv);
            xv_val_decref(cv);
        }
    }
    *out = obj;
    return 0;
}

/* Run rule r's body in a fresh frame with continuation k (r is the current
 * rule for rego.metadata.* meanwhile). */
static int run_rule_body(struct ev *ev, struct rule *r, struct k *k, V *env)
{
    struct rule *saved_rule = ev->cur_rule;
    ev->cur_rule = r;
    int rc = xv_eval_body(ev, env, r->body, 0, k);
    ev->cur_rule = saved_rule;
    return rc;
}

/* Complete rules (with their else chains): the first rule of a chain that
 * produces a value gives it; two different values are a conflict. */
static int eval_complete(struct ev *ev, struct node *n, V *acc)
{
    int rc = R_OK;
    for (struct rule *r = n->rules; r && rc >= 0; r = r->next) {
        if (r->kind != R_COMPLETE)
            continue;
        for (struct rule *e = r; e && rc >= 0; e = e->els) {
            if ((rc = xv_eval_step(ev, e->loc)) < 0)
                break;
            V fsmall[XV_EVAL_FRAME_SMALL];
            V *env = xv_eval_frame_get(fsmall, e->nslots);
            if (!env)
                return xv_eval_oom(ev);
            struct kcollect kc = {{xv_eval_k_complete_body}, env, e, acc, 0, 0};
            rc = run_rule_body(ev, e, &kc.k, env);
            xv_eval_frame_done(fsmall, env);
            if (kc.found)
                break;
        }
    }
    return rc;
}

/* Children of an object document (general ref heads below an object rule)
 * merged into acc. */
static int merge_kids(struct ev *ev, struct node *n, V acc)
{
    int maxrest = 0;
    for (struct rule *r = n->rules; r; r = r->next)
        maxrest = r->nrest > maxrest ? r->nrest : maxrest;
    for (int c = 0; c < n->nkids; c++) {
        V cv = NULL;
        if (xv_eval_node_value(ev, n->kids[c], NULL, &cv))
            return R_ERR;
        if (!cv)
            continue;
        long at = xv_val_object_find(acc, n->kids[c]->key);
        V merged = at >= 0 ? merge_docs(XV_OBJ_VAL(acc, at), cv, maxrest - 1) : xv_val_incref(cv);
        xv_val_decref(cv);
        if (!merged)
            return xv_eval_raise(ev, n->rules->loc, "eval_conflict_error",
                                 "object keys must be unique");
        xv_val_object_set(acc, n->kids[c]->key, merged);
        xv_val_decref(merged);
    }
    return R_OK;
}

/* Which slot of ev->reuse (query.h) serves partial set node n here: only
 * at the top level (a `with` changes what any rule may see); -1 if none. */
static int reuse_slot(const struct ev *ev, const struct node *n)
{
    const struct xv_eval_reuse *ru = ev->reuse;
    if (!ru || ev->cache != ev->top_cache || !n->has_set)
        return -1;
    for (int j = 0; j < 2; j++)
        if (ru->nodes[j] == n && (!ru->use || ru->kept[j]))
            return j;
    return -1;
}

/* A rule whose value cannot change between the two evaluations of a reuse. */
static int rule_stable(const struct xv_eval_reuse *ru, const struct rule *r)
{
    return !(r->deps & (ru->changed | XV_DEP_INPUT | XV_DEP_OTHER));
}

/* The end of a partial set with reuse slot j: filling, the stable rules'
 * elements (collected in *kept) are added to *acc and kept for the other
 * evaluation; using, the kept elements are added. */
static int reuse_finish(struct ev *ev, int j, V *acc, V kept)
{
    struct xv_eval_reuse *ru = ev->reuse;
    V from = ru->use ? ru->kept[j] : kept;
    for (size_t i = 0; i < XV_ARR_LEN(from); i++)
        if (xv_val_set_add(*acc, XV_ARR_ITEM(from, i)))
            return xv_eval_oom(ev);
    if (!ru->use) {
        xv_val_decref(ru->kept[j]);
        ru->kept[j] = xv_val_incref(kept);
        ru->filled[j] = 1;
    }
    return R_OK;
}

/* Partial set and object rules: every solution adds to the set/object.
 * With a reuse slot, stable rules are collected apart (fill) or skipped
 * (use): the order of evaluation, and so of any error, stays the rules'. */
static int eval_partial(struct ev *ev, struct node *n, V *acc)
{
    int setdoc = n->has_set;
    *acc = setdoc ? xv_val_set_new(0) : xv_val_object_new(0);
    if (!*acc)
        return xv_eval_oom(ev);
    int slot = reuse_slot(ev, n);
    V kept = slot >= 0 && !ev->reuse->use ? xv_val_set_new(0) : NULL;
    if (slot >= 0 && !ev->reuse->use && !kept)
        return xv_eval_oom(ev);
    int rc = R_OK;
    for (struct rule *r = n->rules; r && rc >= 0; r = r->next) {
        int stable = slot >= 0 && r->kind == R_SET && r->nrest == 0 && rule_stable(ev->reuse, r);
        if (stable && ev->reuse->use)
            continue;
        if ((rc = xv_eval_step(ev, r->loc)) < 0)
            break;
        V fsmall[XV_EVAL_FRAME_SMALL];
        V *env = xv_eval_frame_get(fsmall, r->nslots);
        if (!env) {
            xv_val_decref(kept);
            return xv_eval_oom(ev);
        }
        if (r->kind == R_SET && r->nrest == 0 && setdoc) {
            struct kcollect kc = {{kset_body}, env, r, stable ? &kept : acc, 0, 0};
            rc = run_rule_body(ev, r, &kc.k, env);
        } else if (!setdoc && (r->kind == R_OBJECT || r->kind == R_SET) && r->nrest <= 16) {
            struct kobj ko;
            memset(&ko, 0, sizeof ko);
            ko.k.fn = kobj_body;
            ko.env = env;
            ko.r = r;
            ko.acc = *acc;
            rc = run_rule_body(ev, r, &ko.k, env);
        }
        xv_eval_frame_done(fsmall, env);
    }
    if (rc >= 0 && slot >= 0)
        rc = reuse_finish(ev, slot, acc, kept);
    xv_val_decref(kept);
    if (rc >= 0 && !setdoc)
        rc = merge_kids(ev, n, *acc);
    return rc;
}

/* Value of the document at node n (merged with base data). New reference. */
int xv_eval_node_value(struct ev *ev, struct node *n, V base, V *out)
{
    *out = NULL;
    if (ev->mask && ev->mask[n->id]) {
        *out = xv_val_incref(base);
        return 0;
    }
    if (!n->nrules && !n->dflt)
        return package_value(ev, n, base, out);
    struct cache_ent *ce = &ev->cache[n->id];
    if (ce->state == 2) {
        *out = xv_val_incref(ce->v);
        return 0;
    }
    if (ce->state == 1) {
        xv_eval_raise(ev, n->rules ? n->rules->loc : n->dflt->loc, "rego_recursion_error",
                      "rule %s is recursive", n->path);
        return -1;
    }
    if (n->is_func)
        return 0;
    if (++ev->depth > MAX_DEPTH) {
        xv_eval_raise(ev, n->rules ? n->rules->loc : n->dflt->loc, "eval_internal_error",
                      "rule evaluation nested too deeply");
        return -1;
    }
    ce->state = 1;
    V acc = NULL;
    int rc = R_OK;
    if (n->has_complete)
        rc = eval_complete(ev, n, &acc);
    else if (n->nrules)
        rc = eval_partial(ev, n, &acc);
    if (rc >= 0 && !acc && n->dflt) {
        V fsmall[XV_EVAL_FRAME_SMALL];
        V *env = xv_eval_frame_get(fsmall, n->dflt->nslots);
        struct kcollect kc = {{xv_eval_k_complete_body}, env, n->dflt, &acc, 0, 0};
        rc = env ? xv_eval_body(ev, env, n->dflt->body, 0, &kc.k) : xv_eval_oom(ev);
        xv_eval_frame_done(fsmall, env);
    }
    ev->depth--;
    if (rc < 0) {
        xv_val_decref(acc);
        ce->state = 0;
        return -1;
    }
    /* the cache owns one reference, the caller another */
    ce->v = acc;
    ce->state = 2;
    *out = xv_val_incref(acc);
    return 0;
}
