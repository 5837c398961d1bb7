/*
 * builtins/graph.c — graph.reachable and graph.reachable_paths over an
 * adjacency object (node -> array or set of neighbours).
 *
 * Invariant: traversal is iterative for graph.reachable and bounded in depth
 * for graph.reachable_paths (a path cannot be longer than the node count).
 * reachable_paths follows OPA's results: a path ends at a node without
 * neighbours in the graph, or where the next neighbour was already expanded
 * (a node counts as expanded once it had a neighbour in the graph).
 * Thread safety: reentrant.
 */
#include "builtins/helpers.h"

#include <stdlib.h>

#define OOM(ctx) xv_bi_error((ctx), "out of memory")

/* Neighbours of v (array or set elements); NULL/0 for anything else. */
static struct xv_value *const *nbrs(const struct xv_value *v, size_t *n)
{
    if (v && (XV_IS(v, XV_T_ARRAY) || XV_IS(v, XV_T_SET))) {
        *n = v->u.arr.len;
        return v->u.arr.items;
    }
    *n = 0;
    return NULL;
}

static const struct xv_value *edges_of(const struct xv_value *g, const struct xv_value *node)
{
    long at = xv_val_object_find(g, node);
    return at < 0 ? NULL : XV_OBJ_VAL(g, at);
}

static int check_args(struct xv_bctx *ctx, struct xv_value *const *a)
{
    if (xv_bi_want(ctx, a, 1, XV_T_OBJECT))
        return XV_BI_ERROR;
    if (!XV_IS(a[1], XV_T_ARRAY) && !XV_IS(a[1], XV_T_SET))
        return xv_bi_type_error(ctx, 2, "one of {set, array}", a[1]);
    return 0;
}

BI_FN(bi_reachable)
{
    if (check_args(ctx, a))
        return XV_BI_ERROR;
    const struct xv_value *g = a[0];
    struct xv_value *reached = xv_val_set_new(0), *queue = xv_val_array_new(8);
    if (!reached || !queue) {
        xv_val_decref(reached);
        xv_val_decref(queue);
        return OOM(ctx);
    }
    int rc = 0;
    for (size_t i = 0; i < a[1]->u.arr.len && !rc; i++)
        rc = xv_val_array_push(queue, a[1]->u.arr.items[i]);
    for (size_t qi = 0; !rc && qi < XV_ARR_LEN(queue); qi++) {
        struct xv_value *node = XV_ARR_ITEM(queue, qi);
        const struct xv_value *e = edges_of(g, node);
        if (!e)
            continue;
        size_t n;
        struct xv_value *const *nb = nbrs(e, &n);
        for (size_t k = 0; k < n && !rc; k++)
            if (xv_val_set_find(reached, nb[k]) < 0)
                rc = xv_val_array_push(queue, nb[k]);
        if (!rc)
            rc = xv_val_set_add(reached, node);
        /* bound the queue: every node enters the reached set at most once,
         * so a queue longer than edges^2 only repeats work */
        if (XV_ARR_LEN(queue) > 1000000)
            rc = -1;
    }
    xv_val_decref(queue);
    if (rc) {
        xv_val_decref(reached);
        return OOM(ctx);
    }
    *out = reached;
    return XV_BI_OK;
}

struct walk {
    const struct xv_value *g;   /* the graph */
    struct xv_value *expanded;  /* nodes that had a neighbour in the graph */
    struct xv_value *result;    /* set of paths */
    struct xv_value **path;     /* current path (borrowed nodes) */
    size_t len, cap;            /* path length / capacity */
};

static int emit(struct walk *w)
{
    struct xv_value *arr = xv_val_array_new(w->len);
    int rc = arr ? 0 : -1;
    for (size_t i = 0; !rc && i < w->len; i++)
        rc = xv_val_array_push(arr, w->path[i]);
    if (!rc)
        rc = xv_val_set_add(w->result, arr);
    xv_val_decref(arr);
    return rc;
}

static int walk_from(struct walk *w, struct xv_value *u)
{
    if (w->len >= w->cap)
        return -1;
    w->path[w->len++] = u;
    size_t n;
    struct xv_value *const *nb = nbrs(edges_of(w->g, u), &n);
    bool any = false;
    int rc = 0;
    for (size_t k = 0; k < n && !any; k++)
        any = edges_of(w->g, nb[k]) != NULL;
    if (!any) {
        rc = emit(w);
    } else {
        rc = xv_val_set_add(w->expanded, u);
        for (size_t k = 0; k < n && !rc; k++) {
            if (!edges_of(w->g, nb[k]))
                continue;
            if (xv_val_set_find(w->expanded, nb[k]) >= 0)
                rc = emit(w);
            else
                rc = walk_from(w, nb[k]);
        }
    }
    w->len--;
    return rc;
}

BI_FN(bi_reachable_paths)
{
    if (check_args(ctx, a))
        return XV_BI_ERROR;
    struct walk w = {a[0], NULL, xv_val_set_new(0), NULL, 0, XV_OBJ_LEN(a[0]) + 1};
    w.path = calloc(w.cap, sizeof *w.path);
    int rc = (w.result && w.path) ? 0 : -1;
    for (size_t i = 0; !rc && i < a[1]->u.arr.len; i++) {
        struct xv_value *node = a[1]->u.arr.items[i];
        if (!edges_of(a[0], node))
            continue;
        w.expanded = xv_val_set_new(0);
        rc = w.expanded ? walk_from(&w, node) : -1;
        xv_val_decref(w.expanded);
        w.expanded = NULL;
    }
    free(w.path);
    if (rc) {
        xv_val_decref(w.result);
        return OOM(ctx);
    }
    *out = w.result;
    return XV_BI_OK;
}

const struct xv_builtin_def xv_bi_graph[] = {
    {"graph.reachable", 2, bi_reachable, 0},
    {"graph.reachable_paths", 2, bi_reachable_paths, 0},
    {NULL, 0, NULL, 0},
};
