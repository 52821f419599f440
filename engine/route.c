/* HTTP routes declared by the plugins (see route.h and docs/plugins.md). */
#include "config.h"
#include "route.h"

#include <ctype.h>
#include <string.h>

/* ---- a top-level member scan, without copying the body -------------------- */

/* Index after JSON whitespace from i. */
static size_t skip_ws(const char *b, size_t n, size_t i)
{
    while (i < n && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' ||
                     b[i] == '\n'))
        i++;
    return i;
}

/* b[i] is '"': index after the closing quote, or n.  *escaped set when the
 * string holds a backslash. */
static size_t skip_string(const char *b, size_t n, size_t i, int *escaped)
{
    for (i++; i < n; i++) {
        if (b[i] == '\\') {
            *escaped = 1;
            i++;
        } else if (b[i] == '"') {
            return i + 1;
        }
    }
    return n;
}

/* Index after the JSON value starting at i (strings, nesting), or n. */
static size_t skip_value(const char *b, size_t n, size_t i)
{
    int depth = 0, esc = 0;

    while (i < n) {
        char ch = b[i];
        if (ch == '"') {
            i = skip_string(b, n, i, &esc);
            if (depth == 0)
                return i;
            continue;
        }
        if (ch == '{' || ch == '[') {
            depth++;
        } else if (ch == '}' || ch == ']') {
            if (depth == 0)
                return i;
            if (--depth == 0)
                return i + 1;
        } else if (ch == ',' && depth == 0) {
            return i;
        }
        i++;
    }
    return n;
}

/* 1 if the body is an object with a top-level member named field. */
int eng_route_body_has(const char *body, size_t len, const char *field)
{
    size_t i = skip_ws(body, len, 0), fl = strlen(field);

    if (i >= len || body[i] != '{')
        return 0;
    for (i++;;) {
        size_t ks;
        int esc = 0;

        i = skip_ws(body, len, i);
        if (i >= len || body[i] != '"')
            return 0;
        ks = i + 1;
        i = skip_string(body, len, i, &esc);
        if (i >= len)
            return 0;
        if (!esc && i - 1 - ks == fl && memcmp(body + ks, field, fl) == 0)
            return 1;
        i = skip_ws(body, len, i);
        if (i >= len || body[i] != ':')
            return 0;
        i = skip_value(body, len, skip_ws(body, len, i + 1));
        i = skip_ws(body, len, i);
        if (i >= len || body[i] != ',')
            return 0;
        i++;
    }
}

/* ---- path patterns ---------------------------------------------------------- */

/* 1 if s[0..n) is a plausible key id: 1..64 of [0-9A-Fa-f-].  Exact
 * validation is the handler's. */
static int key_id_plausible(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]) && s[i] != '-')
            return 0;
    return 1;
}

/* Matches path against pattern segment by segment; a "{key_id}" segment
 * takes a plausible key id into key_id[65].  1 on a match. */
static int path_match(const char *pattern, const char *path, char *key_id)
{
    key_id[0] = '\0';
    while (*pattern != '\0' && *path != '\0') {
        size_t pl = strcspn(pattern + 1, "/") + 1;
        size_t sl = strcspn(path + 1, "/") + 1;
        if (pl == 9 && strncmp(pattern, "/{key_id}", 9) == 0) {
            if (!key_id_plausible(path + 1, sl - 1))
                return 0;
            memcpy(key_id, path + 1, sl - 1);
            key_id[sl - 1] = '\0';
        } else if (pl != sl || strncmp(pattern, path, pl) != 0) {
            return 0;
        }
        pattern += pl;
        path += sl;
    }
    return *pattern == '\0' && *path == '\0';
}

/* ---- resolution ---------------------------------------------------------------- */

/* The routes of entry e's op (ABI 1.1), or NULL. */
static const signer_route *entry_routes(const eng_op_entry *e)
{
    if (e->is_alias || e->plugin->def->abi_minor < 1)
        return NULL;
    return e->op->routes;
}

/* What the walk over all routes found. */
typedef struct route_pick {
    const eng_op_entry *with_field; /* a route whose if_field is present */
    const eng_op_entry *plain;      /* the first route without if_field */
    char key_with[65], key_plain[65];
    const char *allow;              /* a method the path is served with */
} route_pick;

/* Considers route rt of entry e for the request. */
static void consider(route_pick *pk, const eng_op_entry *e,
                     const signer_route *rt, const char *method,
                     const char *path, const char *body, size_t body_len)
{
    char key_id[65];

    if (rt->path == NULL || !path_match(rt->path, path, key_id))
        return;
    if (pk->allow == NULL)
        pk->allow = rt->method;
    if (strcmp(rt->method, method) != 0)
        return;
    if (rt->if_field != NULL) {
        if (pk->with_field == NULL &&
            eng_route_body_has(body, body_len, rt->if_field)) {
            pk->with_field = e;
            memcpy(pk->key_with, key_id, sizeof pk->key_with);
        }
    } else if (pk->plain == NULL) {
        pk->plain = e;
        memcpy(pk->key_plain, key_id, sizeof pk->key_plain);
    }
}

/* Resolves method + path (+ body) to a registered operation. */
int eng_route_resolve(const eng_registry *r, const char *method,
                      const char *path, const char *body, size_t body_len,
                      eng_route_match *out)
{
    route_pick pk;

    memset(out, 0, sizeof *out);
    memset(&pk, 0, sizeof pk);
    if (strcmp(path, "/") == 0) {
        out->allow = "POST";
        return strcmp(method, "POST") == 0 ? 0 : 405;
    }
    for (size_t i = 0; i < r->n_ops; i++) {
        const signer_route *rt = entry_routes(&r->ops[i]);
        for (; rt != NULL && rt->method != NULL; rt++)
            consider(&pk, &r->ops[i], rt, method, path, body, body_len);
    }
    if (pk.with_field != NULL) {
        out->operation = pk.with_field->name;
        memcpy(out->key_id, pk.key_with, sizeof out->key_id);
        return 0;
    }
    if (pk.plain != NULL) {
        out->operation = pk.plain->name;
        memcpy(out->key_id, pk.key_plain, sizeof out->key_id);
        return 0;
    }
    out->allow = pk.allow;
    return pk.allow != NULL ? 405 : 404;
}
