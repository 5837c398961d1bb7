/*
 * provider.c — which provider a call goes to, from the host it was sent to
 * (SPEC §5 `provider`, §6, §7 `gen_ai.provider.name`), and the Azure
 * deployment named in a request path.
 *
 * Provider ids are Xenovia's own (docs.xenovia.io "Supported providers":
 * the type a policy sees in input.provider); the OTel name is the
 * GenAI semantic conventions' well-known `gen_ai.provider.name` value where
 * one exists (openai, azure.ai.openai, anthropic, gcp.gemini, aws.bedrock,
 * …), else the Xenovia id. A host not in the table is `openai_compatible`.
 * A Xenovia runtime host is a gateway, not a provider: the provider is then
 * read from the path (`/a/<proxy>/<provider>/…`) when it names a known one.
 *
 * Invariant: pure functions over strings, static results, no allocation.
 * Thread safety: the only state is each thread's own last host lookup.
 */
#include <string.h>
#include <strings.h>

#include "openai_int.h"

/* Host patterns: an exact name, or "*.suffix" (any name ending ".suffix"). */
/* A pattern with its length, known at compile time (the table is scanned
 * for every API call: most entries are ruled out by length alone). */
#define H(s) s, sizeof(s) - 1

/* Text in place, not pointers: a table of pointers is relocated by the
 * loader at every process start, in pages written for that alone (issue 9).
 * ROW refuses (a negative array size) a name longer than its field. */
#define ROW(h, i, o) \
    { h, sizeof(h) - 1 + 0 * sizeof(char[sizeof(h) <= 40 && sizeof(i) <= 24 && sizeof(o) <= 24 ? 1 : -1]), i, o }

static const struct {
    char host[40];
    unsigned char len;
    char id[24];
    char otel[24];
} g_hosts[] = {
    ROW("api.openai.com", "openai", "openai"),
    ROW("*.openai.azure.com", "azure", "azure.ai.openai"),
    ROW("*.cognitiveservices.azure.com", "azure", "azure.ai.openai"),
    ROW("*.services.ai.azure.com", "microsoft-foundry", "azure.ai.inference"),
    ROW("models.inference.ai.azure.com", "github-models", "github-models"),
    ROW("models.github.ai", "github-models", "github-models"),
    ROW("api.anthropic.com", "anthropic", "anthropic"),
    ROW("generativelanguage.googleapis.com", "gemini", "gcp.gemini"),
    ROW("aiplatform.googleapis.com", "vertex", "gcp.vertex_ai"),
    ROW("*.aiplatform.googleapis.com", "vertex", "gcp.vertex_ai"),
    ROW("api.groq.com", "groq", "groq"),
    ROW("*.amazonaws.com", "bedrock", "aws.bedrock"), /* checked for "bedrock" below */
    ROW("api.mistral.ai", "mistral", "mistral_ai"),
    ROW("api.cohere.ai", "cohere", "cohere"),
    ROW("api.cohere.com", "cohere", "cohere"),
    ROW("api.deepseek.com", "deepseek", "deepseek"),
    ROW("api.together.xyz", "together", "together"),
    ROW("api.together.ai", "together", "together"),
    ROW("api.fireworks.ai", "fireworks", "fireworks"),
    ROW("api.perplexity.ai", "perplexity", "perplexity"),
    ROW("api.x.ai", "xai", "x_ai"),
    ROW("openrouter.ai", "openrouter", "openrouter"),
    ROW("api.moonshot.ai", "moonshot", "moonshot"),
    ROW("api.moonshot.cn", "moonshot", "moonshot"),
    ROW("api.z.ai", "zai", "zai"),
    ROW("open.bigmodel.cn", "zai", "zai"),
    ROW("dashscope.aliyuncs.com", "alibaba", "alibaba"),
    ROW("dashscope-intl.aliyuncs.com", "alibaba", "alibaba"),
    ROW("api.minimax.io", "minimax", "minimax"),
    ROW("api.minimaxi.com", "minimax", "minimax"),
    ROW("api.llama.com", "llama", "llama"),
    ROW("api.cerebras.ai", "cerebras", "cerebras"),
    ROW("api.deepinfra.com", "deepinfra", "deepinfra"),
    ROW("api.studio.nebius.com", "nebius", "nebius"),
    ROW("api.tokenfactory.nebius.com", "nebius", "nebius"),
    ROW("router.huggingface.co", "huggingface", "huggingface"),
    ROW("api-inference.huggingface.co", "huggingface", "huggingface"),
    ROW("api.sambanova.ai", "sambanova", "sambanova"),
    ROW("inference.baseten.co", "baseten", "baseten"),
    ROW("api.novita.ai", "novita", "novita"),
    ROW("api.friendli.ai", "friendli", "friendli"),
    ROW("api.upstage.ai", "upstage", "upstage"),
    ROW("integrate.api.nvidia.com", "nvidia", "nvidia"),
    ROW("api.scaleway.ai", "scaleway", "scaleway"),
    ROW("*.endpoints.kepler.ai.cloud.ovh.net", "ovhcloud", "ovhcloud"),
    ROW("api.cloudflare.com", "cloudflare-workers-ai", "cloudflare-workers-ai"),
    ROW("*.cloud.databricks.com", "databricks", "databricks"),
    ROW("*.azuredatabricks.net", "databricks", "databricks"),
    ROW("ai-gateway.vercel.sh", "vercel-ai-gateway", "vercel-ai-gateway"),
    ROW("router.requesty.ai", "requesty", "requesty"),
};
#undef ROW
#define NHOSTS (sizeof g_hosts / sizeof g_hosts[0])
_Static_assert(NHOSTS < 32767, "t_last.index");

/* The calling thread's last host and its table index (-1: not in the
 * table); len is the host's length + 1, 0 when nothing is remembered. */
static __thread struct {
    char host[64];
    unsigned char len;
    short index;
} t_last __attribute__((tls_model("initial-exec")));

static int host_match(const char *pat, size_t pl, const char *host, size_t hl)
{
    if (pat[0] == '*' && pat[1] == '.') {
        size_t sl = pl - 1; /* ".suffix" */
        return hl > sl && strncasecmp(host + hl - sl, pat + 1, sl) == 0;
    }
    return pl == hl && strncasecmp(host, pat, hl) == 0;
}

static int is_xenovia_host(const char *host, size_t hl)
{
    return host_match(H("xenovia.io"), host, hl) || host_match(H("*.xenovia.io"), host, hl);
}

const char *xv_openai_provider_otel_name(const char *id)
{
    if (!id || !*id)
        return "openai_compatible";
    for (size_t i = 0; i < NHOSTS; i++)
        if (strcmp(g_hosts[i].id, id) == 0)
            return g_hosts[i].otel;
    return id; /* openai_compatible, vllm, …: the id is the best name there is */
}

/* The table entry for a provider id, or -1. */
static long id_index(const char *p, size_t n)
{
    for (size_t i = 0; i < NHOSTS; i++)
        if (strlen(g_hosts[i].id) == n && strncasecmp(g_hosts[i].id, p, n) == 0)
            return (long)i;
    return -1;
}

void xv_openai_provider_for(const char *host, const char *path, size_t path_len,
                            struct xv_openai_provider *out)
{
    out->id = "openai_compatible";
    out->otel_name = "openai_compatible";
    out->gateway = NULL;
    if (!host)
        return;
    size_t hl = strlen(host);
    while (hl && host[hl - 1] == '.')
        hl--; /* a fully qualified "api.openai.com." */
    if (is_xenovia_host(host, hl)) {
        /* Xenovia runtime: /a/<proxy>/<provider>/… names the provider. */
        out->gateway = "xenovia";
        if (path && path_len > 3 && memcmp(path, "/a/", 3) == 0) {
            const char *p = memchr(path + 3, '/', path_len - 3);
            if (p) {
                p++;
                size_t rest = path_len - (size_t)(p - path), n = 0;
                while (n < rest && p[n] != '/' && p[n] != '?')
                    n++;
                long i = id_index(p, n);
                if (i >= 0) {
                    out->id = g_hosts[i].id;
                    out->otel_name = g_hosts[i].otel;
                }
            }
        }
        return;
    }
    /* The same host call after call (a keep-alive connection, one API): the
     * thread's last answer, not a walk of the 4.5 KiB table, whose ~70
     * cache lines a cache-hungry client (Node) had evicted by the next call
     * (issue 9). Exact bytes as the key; a host the table does not hold is
     * remembered too. */
    long found = -1;
    if (hl < sizeof t_last.host && t_last.len == hl + 1 && memcmp(t_last.host, host, hl) == 0) {
        found = t_last.index;
    } else {
        for (size_t i = 0; i < NHOSTS && found < 0; i++) {
            if (!host_match(g_hosts[i].host, g_hosts[i].len, host, hl))
                continue;
            /* *.amazonaws.com is Bedrock only for its runtime endpoints. */
            if (!strcmp(g_hosts[i].id, "bedrock") && !memmem(host, hl, "bedrock", 7))
                continue;
            found = (long)i;
        }
        if (hl < sizeof t_last.host) {
            memcpy(t_last.host, host, hl);
            t_last.len = (unsigned char)(hl + 1);
            t_last.index = (short)found;
        }
    }
    if (found >= 0) {
        out->id = g_hosts[found].id;
        out->otel_name = g_hosts[found].otel;
    }
}

size_t xv_openai_azure_deployment(const char *target, size_t len, char *out, size_t cap)
{
    static const char key[] = "/openai/deployments/";
    const size_t kl = sizeof key - 1;
    if (!out || !cap)
        return 0;
    out[0] = '\0';
    size_t plen = 0;
    while (plen < len && target[plen] != '?' && target[plen] != '#')
        plen++;
    const char *k = target ? memmem(target, plen, key, kl) : NULL;
    if (!k)
        return 0;
    const char *name = k + kl;
    size_t n = 0, rest = plen - (size_t)(name - target);
    while (n < rest && name[n] != '/')
        n++;
    if (n == 0 || n >= cap)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch < 0x21 || ch > 0x7e || ch == '%')
            return 0; /* keep it to plain ASCII names (no decoding) */
    }
    memcpy(out, name, n);
    out[n] = '\0';
    return n;
}
