/*
 * dns.c — getaddrinfo hook: remembers which name each numeric address came
 * from, so a later connect() can tell which host a socket talks to.
 *
 * A fixed ring of XV_DNS_SLOTS entries (oldest overwritten): bounded memory
 * whatever the process resolves. A lookup visits only the slots written so
 * far, so a process that resolved nothing touches none of the ring's pages
 * (its 80 KiB stay unmapped zero pages). Thread safety: one mutex around the
 * ring, never held across the real resolver.
 */
#include "xv_hooks.h"
#include "xv_route.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define XV_DNS_SLOTS 256

/* Ring of address -> name; written under g_dns.mu. */
static struct {
    pthread_mutex_t mu;
    unsigned next;                       /* slot to overwrite next */
    unsigned used;                       /* slots written, at most XV_DNS_SLOTS */
} g_dns XV_CALL_DATA = { .mu = PTHREAD_MUTEX_INITIALIZER };
/* The slots, apart: a connect by address in a process that resolved no
 * name reads only `used` above. */
static struct {
    char addr[64];                       /* numeric address, "" when free */
    char host[256];                      /* the name it was resolved from */
} g_dns_slot[XV_DNS_SLOTS] XV_LARGE_BSS;

static void remember(const char *host, const struct addrinfo *res)
{
    pthread_mutex_lock(&g_dns.mu);
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        char addr[64];
        const void *src;
        if (ai->ai_family == AF_INET)
            src = &((const struct sockaddr_in *)(const void *)ai->ai_addr)->sin_addr;
        else if (ai->ai_family == AF_INET6)
            src = &((const struct sockaddr_in6 *)(const void *)ai->ai_addr)->sin6_addr;
        else
            continue;
        if (!inet_ntop(ai->ai_family, src, addr, sizeof addr) || strcmp(addr, host) == 0)
            continue;
        unsigned i = g_dns.next++ % XV_DNS_SLOTS;
        if (g_dns.used < XV_DNS_SLOTS)
            g_dns.used++;
        snprintf(g_dns_slot[i].addr, sizeof g_dns_slot[i].addr, "%s", addr);
        snprintf(g_dns_slot[i].host, sizeof g_dns_slot[i].host, "%s", host);
    }
    pthread_mutex_unlock(&g_dns.mu);
}

int xv_dns_lookup(const char *addr, char *host, size_t cap)
{
    int found = -1;
    pthread_mutex_lock(&g_dns.mu);
    /* newest first: the latest resolution of an address wins */
    for (unsigned k = 1; k <= g_dns.used; k++) {
        unsigned i = (g_dns.next - k) % XV_DNS_SLOTS;
        if (g_dns_slot[i].addr[0] && strcmp(g_dns_slot[i].addr, addr) == 0) {
            snprintf(host, cap, "%s", g_dns_slot[i].host);
            found = 0;
            break;
        }
    }
    pthread_mutex_unlock(&g_dns.mu);
    return found;
}

void xv_dns_atfork_child(void)
{
    pthread_mutex_init(&g_dns.mu, NULL);
}

XV_HOOK int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                        struct addrinfo **res)
{
    xv_real_init();
    const struct xv_route_config *routes = node ? xv_route_config() : NULL;
    if (routes && res && xv_hooks_active()) {
        /* A routed name needs no DNS answer (SPEC §8): it resolves to the
         * sentinel of its rule, which the connect hook sends to the relay. */
        int port = 0;
        if (service) {
            char *end;
            long v = strtol(service, &end, 10);
            port = (*end == '\0' && v > 0 && v < 65536) ? (int)v : 0;
        }
        const struct xv_route_rule *r = xv_route_match(routes, node, port);
        if (r) {
            char sentinel[48];
            xv_route_sentinel((int)(r - routes->rule), sentinel);
            struct addrinfo h = { 0 };
            if (hints)
                h = *hints;
            if (h.ai_family == AF_INET6) {
                char v4[16];
                memcpy(v4, sentinel, sizeof v4);
                snprintf(sentinel, sizeof sentinel, "::ffff:%.15s", v4);
            } else {
                h.ai_family = AF_INET;
            }
            h.ai_flags = (h.ai_flags & ~(AI_ADDRCONFIG | AI_CANONNAME)) | AI_NUMERICHOST;
            int rc = XV_REAL(getaddrinfo)(sentinel, service, &h, res);
            if (rc == 0 && *res) {
                int saved = errno;
                remember(node, *res);
                errno = saved;
            }
            return rc;
        }
    }
    int rc = XV_REAL(getaddrinfo)(node, service, hints, res);
    if (rc == 0 && node && res && *res && xv_hooks_active()) {
        int saved = errno;
        remember(node, *res);
        errno = saved;
    }
    return rc;
}
