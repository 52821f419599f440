/*
 * EIP-712 typed structured data: typed_data {types, primaryType, domain,
 * message} -> keccak256(0x19 0x01 || domainSeparator || hashStruct(message)).
 *
 * Encoding as in the EIP and in ethers v6's TypedDataEncoder:
 *   - encodeType(T) = T "(" type " " name ("," type " " name)* ")" followed
 *     by the encodeType of every struct T references (transitively), sorted
 *     by name; typeHash = keccak256 of that string;
 *   - hashStruct(T, v) = keccak256(typeHash || enc(v.f1) || enc(v.f2) ...);
 *   - atomic values are one 32-byte word: uintN/intN (range-checked, intN
 *     two's complement), bytesN (right-padded), address (left-padded), bool;
 *     bytes and string are keccak256 of their bytes; a struct is its
 *     hashStruct; an array (T[] or T[n], also nested) is keccak256 of its
 *     elements' encodings;
 *   - "int" / "uint" mean int256 / uint256 unless a struct has that name;
 *   - EIP712Domain is taken from types when given, else derived from the
 *     domain's fields in the order name, version, chainId,
 *     verifyingContract, salt (fields that are null are left out).
 *
 * Stricter than ethers where ethers is lax: every field of a struct must be
 * present and no other member may be (a value nobody signs is refused), bool
 * is true or false, type and field names are identifiers, and a type that
 * references itself through any chain is refused.  Every error names the
 * path of the offending value or type (typed_data.message.order.amount).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eth.h"

#define TD_MAX_TYPES 128
#define TD_MAX_FIELDS 128
#define TD_MAX_DIMS 8
#define TD_MAX_DEPTH 48
#define TD_MAX_NAME 128

enum td_kind {
    TD_UINT,
    TD_INT,
    TD_BYTESN,
    TD_ADDRESS,
    TD_BOOL,
    TD_BYTES,
    TD_STRING,
    TD_STRUCT
};

typedef struct td_ftype {
    int kind;
    int width;        /* bits of uintN/intN, bytes of bytesN */
    size_t strct;     /* TD_STRUCT: index into types */
    const char *base; /* base type text as encoded ("uint" -> "uint256") */
    size_t base_len;
    const char *suffix; /* "[]", "[3][]", ... as written, or "" */
    size_t suffix_len;
    int ndims;
    long dims[TD_MAX_DIMS]; /* in written order; -1 = dynamic */
} td_ftype;

typedef struct td_field {
    const char *name;
    td_ftype t;
} td_field;

typedef struct td_type {
    const char *name;
    const signer_json *json; /* its field array */
    td_field *fields;
    size_t nfields;
    int state;     /* cycle search: 0 new, 1 on the path, 2 done */
    int skip_null; /* derived EIP712Domain: null members are absent */
    unsigned char typehash[32];
} td_type;

typedef struct td_ctx {
    const signer_host *h;
    char *err;
    size_t errcap;
    td_type *types; /* ntypes from typed_data.types, + 1 derived domain */
    size_t ntypes;
    size_t cap;     /* allocated entries of types and sorted */
    size_t *sorted; /* type indices by name */
    int depth;
    size_t pathlen;
    char path[256];
} td_ctx;

static int td_fail(td_ctx *c, const char *fmt, ...) SIGNER_PRINTF(2, 3);

/* Writes "<path>: <message>" to the error buffer; SIGNER_ERR_BAD_REQUEST. */
static int td_fail(td_ctx *c, const char *fmt, ...)
{
    char msg[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(c->err, c->errcap, "%s: %s", c->path, msg);
    return SIGNER_ERR_BAD_REQUEST;
}

static size_t td_push(td_ctx *c, const char *fmt, ...) SIGNER_PRINTF(2, 3);

/* Appends to the path; returns the old length for td_pop.  A path that
 * would not fit is cut (it is only used in messages). */
static size_t td_push(td_ctx *c, const char *fmt, ...)
{
    size_t old = c->pathlen;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(c->path + old, sizeof c->path - old, fmt, ap);
    va_end(ap);
    if (n > 0)
        c->pathlen = old + (size_t)n < sizeof c->path ? old + (size_t)n
                                                      : sizeof c->path - 1;
    return old;
}

static void td_pop(td_ctx *c, size_t old)
{
    c->pathlen = old;
    c->path[old] = '\0';
}

/* 1 if s is a non-empty identifier ([A-Za-z0-9_$], not starting with a
 * digit) of at most TD_MAX_NAME characters. */
static int td_ident(const char *s)
{
    size_t i;

    if (s == NULL || s[0] == '\0' || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (i = 0; s[i] != '\0'; i++) {
        char ch = s[i];
        if (i >= TD_MAX_NAME ||
            !((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '_' || ch == '$'))
            return 0;
    }
    return 1;
}

/* Decimal digits s[0..len) without a leading zero, as an int in 1..max;
 * 0 if not. */
static int td_width(const char *s, size_t len, int max)
{
    int v = 0;
    size_t i;

    if (len == 0 || len > 3 || s[0] == '0')
        return 0;
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    return v <= max ? v : 0;
}

/* 1 if s[0..len) is all decimal digits. */
static int td_digits(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* Index of the struct named s[0..len), or ntypes. */
static size_t td_find(const td_ctx *c, const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < c->ntypes; i++)
        if (strlen(c->types[i].name) == len &&
            memcmp(c->types[i].name, s, len) == 0)
            return i;
    return c->ntypes;
}

/* Resolves the base type s[0..len) (no array suffix) into t.  Atomic types
 * first (as ethers does), then struct names.  1 ok, 0 unknown/invalid. */
static int td_base(td_ctx *c, td_ftype *t, const char *s, size_t len)
{
    static const struct {
        const char *name;
        int kind;
    } fixed[] = {{"address", TD_ADDRESS}, {"bool", TD_BOOL},
                 {"bytes", TD_BYTES},     {"string", TD_STRING}};
    size_t i;

    t->base = s;
    t->base_len = len;
    for (i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (strlen(fixed[i].name) == len && memcmp(s, fixed[i].name, len) == 0) {
            t->kind = fixed[i].kind;
            return 1;
        }
    if ((len > 4 && memcmp(s, "uint", 4) == 0) ||
        (len > 3 && memcmp(s, "int", 3) == 0 && s[3] >= '0' && s[3] <= '9')) {
        size_t off = s[0] == 'u' ? 4 : 3;
        t->kind = s[0] == 'u' ? TD_UINT : TD_INT;
        t->width = td_width(s + off, len - off, 256);
        if (t->width != 0 && t->width % 8 == 0)
            return 1;
        if (td_digits(s + off, len - off))
            return 0; /* intN with a bad N: never a struct (as ethers) */
    }
    if (len > 5 && memcmp(s, "bytes", 5) == 0) {
        t->kind = TD_BYTESN;
        t->width = td_width(s + 5, len - 5, 32);
        if (t->width != 0)
            return 1;
        if (td_digits(s + 5, len - 5))
            return 0; /* bytesN with a bad N, likewise */
    }
    t->kind = TD_STRUCT;
    t->strct = td_find(c, s, len);
    if (t->strct < c->ntypes)
        return 1;
    if ((len == 3 && memcmp(s, "int", 3) == 0) ||
        (len == 4 && memcmp(s, "uint", 4) == 0)) {
        t->kind = s[0] == 'u' ? TD_UINT : TD_INT;
        t->width = 256;
        t->base = s[0] == 'u' ? "uint256" : "int256";
        t->base_len = strlen(t->base);
        return 1;
    }
    return 0;
}

/* Parses a field type "base[..][..]" into t; 400 naming the field. */
static int td_parse_type(td_ctx *c, td_ftype *t, const char *s)
{
    size_t len = strlen(s), blen = 0, i;

    memset(t, 0, sizeof *t);
    while (blen < len && s[blen] != '[')
        blen++;
    t->suffix = s + blen;
    t->suffix_len = len - blen;
    for (i = blen; i < len;) {
        size_t j = i + 1;
        long n = 0;
        while (j < len && s[j] >= '0' && s[j] <= '9') {
            if (n > 100000000L)
                return td_fail(c, "array length too large in \"%.64s\"", s);
            n = n * 10 + (s[j] - '0');
            j++;
        }
        if (j >= len || s[j] != ']' || t->ndims == TD_MAX_DIMS)
            return td_fail(c, "malformed type \"%.64s\"", s);
        t->dims[t->ndims++] = j == i + 1 ? -1 : n;
        i = j + 1;
    }
    if (blen == 0 || !td_base(c, t, s, blen))
        return td_fail(c, "unknown type \"%.*s\"", (int)(blen < 64 ? blen : 64),
                       s);
    return SIGNER_OK;
}

/* Reads the field list of type ti ([{name, type}, ...]). */
static int td_load_fields(td_ctx *c, size_t ti)
{
    const signer_host *h = c->h;
    td_type *T = &c->types[ti];
    size_t n = h->json_count(T->json), i, j, old;
    int rc;

    if (h->json_type(T->json) != SIGNER_JSON_ARRAY)
        return td_fail(c, "expected an array of {name, type}");
    if (n > TD_MAX_FIELDS)
        return td_fail(c, "more than %d fields", TD_MAX_FIELDS);
    T->fields = calloc(n ? n : 1, sizeof *T->fields);
    if (T->fields == NULL)
        return SIGNER_ERR_NOMEM;
    for (i = 0; i < n; i++) {
        const signer_json *f = h->json_at(T->json, i, NULL);
        const char *name, *type;
        old = td_push(c, "[%zu]", i);
        name = h->json_string(h->json_get(f, "name"), NULL);
        type = h->json_string(h->json_get(f, "type"), NULL);
        if (h->json_type(f) != SIGNER_JSON_OBJECT || h->json_count(f) != 2 ||
            name == NULL || type == NULL)
            return td_fail(c, "expected {\"name\": ..., \"type\": ...}");
        if (!td_ident(name))
            return td_fail(c, "field name \"%.64s\" is not an identifier",
                           name);
        for (j = 0; j < i; j++)
            if (strcmp(T->fields[j].name, name) == 0)
                return td_fail(c, "duplicate field name \"%.64s\"", name);
        td_pop(c, old);
        old = td_push(c, ".%s", name);
        T->fields[i].name = name;
        rc = td_parse_type(c, &T->fields[i].t, type);
        if (rc != SIGNER_OK)
            return rc;
        if (T->fields[i].t.kind == TD_STRUCT && T->fields[i].t.strct == ti)
            return td_fail(c, "circular type reference to \"%s\"", T->name);
        T->nfields++;
        td_pop(c, old);
    }
    return SIGNER_OK;
}

/* Depth-first search for a cycle through type ti. */
static int td_acyclic(td_ctx *c, size_t ti)
{
    td_type *T = &c->types[ti];
    size_t i;
    int rc;

    if (T->state == 2)
        return SIGNER_OK;
    if (T->state == 1)
        return td_fail(c, "circular type reference to \"%s\"", T->name);
    T->state = 1;
    for (i = 0; i < T->nfields; i++) {
        if (T->fields[i].t.kind != TD_STRUCT)
            continue;
        rc = td_acyclic(c, T->fields[i].t.strct);
        if (rc != SIGNER_OK)
            return rc;
    }
    T->state = 2;
    return SIGNER_OK;
}

/* Feeds encodeType(T) (this type alone) to k. */
static void td_encode_type(eth_keccak *k, const td_type *T)
{
    size_t i;

    eth_keccak_update(k, T->name, strlen(T->name));
    eth_keccak_update(k, "(", 1);
    for (i = 0; i < T->nfields; i++) {
        const td_field *f = &T->fields[i];
        if (i > 0)
            eth_keccak_update(k, ",", 1);
        eth_keccak_update(k, f->t.base, f->t.base_len);
        eth_keccak_update(k, f->t.suffix, f->t.suffix_len);
        eth_keccak_update(k, " ", 1);
        eth_keccak_update(k, f->name, strlen(f->name));
    }
    eth_keccak_update(k, ")", 1);
}

/* Marks in used[] every struct reachable from ti (not ti itself: the graph
 * has no cycles). */
static void td_mark(const td_ctx *c, unsigned char *used, size_t ti)
{
    const td_type *T = &c->types[ti];
    size_t i;

    for (i = 0; i < T->nfields; i++) {
        size_t s = T->fields[i].t.strct;
        if (T->fields[i].t.kind == TD_STRUCT && !used[s]) {
            used[s] = 1;
            td_mark(c, used, s);
        }
    }
}

/* typeHash of type ti: its encodeType, then its dependencies by name. */
static int td_typehash(td_ctx *c, size_t ti)
{
    unsigned char *used = calloc(c->ntypes + 1, 1);
    eth_keccak k;
    size_t i;

    if (used == NULL)
        return SIGNER_ERR_NOMEM;
    td_mark(c, used, ti);
    eth_keccak_init(&k);
    td_encode_type(&k, &c->types[ti]);
    for (i = 0; i < c->ntypes; i++)
        if (used[c->sorted[i]] && c->sorted[i] != ti)
            td_encode_type(&k, &c->types[c->sorted[i]]);
    eth_keccak_final(&k, c->types[ti].typehash);
    free(used);
    return SIGNER_OK;
}

/* Sorts type indices by name (byte order = JavaScript's for identifiers). */
static void td_sort(td_ctx *c)
{
    size_t i, j;

    /* insertion sort: at most TD_MAX_TYPES entries, and no global state */
    for (i = 0; i < c->ntypes; i++)
        c->sorted[i] = i;
    for (i = 1; i < c->ntypes; i++) {
        size_t v = c->sorted[i];
        for (j = i; j > 0 && strcmp(c->types[c->sorted[j - 1]].name,
                                    c->types[v].name) > 0;
             j--)
            c->sorted[j] = c->sorted[j - 1];
        c->sorted[j] = v;
    }
}

/* Reads typed_data.types into c (with one spare slot for a derived
 * EIP712Domain), validates every type and computes the type hashes. */
static int td_load_types(td_ctx *c, const signer_json *types)
{
    const signer_host *h = c->h;
    size_t n = h->json_count(types), i, j, old;
    int rc;

    if (h->json_type(types) != SIGNER_JSON_OBJECT)
        return td_fail(c, "expected an object of struct types");
    if (n > TD_MAX_TYPES)
        return td_fail(c, "more than %d types", TD_MAX_TYPES);
    c->types = calloc(n + 1, sizeof *c->types);
    c->sorted = calloc(n + 1, sizeof *c->sorted);
    if (c->types == NULL || c->sorted == NULL)
        return SIGNER_ERR_NOMEM;
    c->cap = n + 1;
    for (i = 0; i < n; i++) {
        const char *name = NULL;
        td_ftype probe;
        c->types[i].json = h->json_at(types, i, &name);
        c->types[i].name = name;
        old = td_push(c, ".%.64s", name ? name : "");
        if (!td_ident(name))
            return td_fail(c, "type name is not an identifier");
        for (j = 0; j < i; j++)
            if (strcmp(c->types[j].name, name) == 0)
                return td_fail(c, "duplicate type");
        c->ntypes = i; /* so that td_base sees no struct of this name */
        if (td_base(c, &probe, name, strlen(name)) && probe.kind != TD_STRUCT)
            return td_fail(c, "an atomic type cannot be redefined");
        td_pop(c, old);
    }
    c->ntypes = n;
    for (i = 0; i < n; i++) {
        old = td_push(c, ".%s", c->types[i].name);
        rc = td_load_fields(c, i);
        if (rc != SIGNER_OK)
            return rc;
        td_pop(c, old);
    }
    for (i = 0; i < n; i++) {
        old = td_push(c, ".%s", c->types[i].name);
        rc = td_acyclic(c, i);
        if (rc != SIGNER_OK)
            return rc;
        td_pop(c, old);
    }
    td_sort(c);
    for (i = 0; i < n; i++) {
        rc = td_typehash(c, i);
        if (rc != SIGNER_OK)
            return rc;
    }
    return SIGNER_OK;
}

/* ---- values ----------------------------------------------------------------- */

static int td_hash_struct(td_ctx *c, unsigned char out[32], size_t ti,
                          const signer_json *v);

/* Number of significant bits of a magnitude in big-endian bytes be[0..n). */
static int td_bits(const unsigned char *be, size_t n)
{
    int bits;
    unsigned char top;

    if (n == 0)
        return 0;
    for (bits = 0, top = be[0]; top != 0; top >>= 1)
        bits++;
    return (int)(8 * (n - 1)) + bits;
}

/* Reads an integer value: JSON number (safe integer) or a decimal / 0x-hex
 * string, each with an optional minus sign. */
static int td_int_value(td_ctx *c, eth_u256 *mag, int *neg,
                        const signer_json *v)
{
    const char *s;
    size_t len;
    double d;
    int st;

    *neg = 0;
    if (c->h->json_number(v, &d)) {
        if (d != d || d > 9007199254740991.0 || d < -9007199254740991.0)
            return td_fail(c, "JSON number beyond 2^53-1 has lost precision; "
                              "send it as a string");
        *neg = d < 0;
        if (*neg)
            d = -d;
        if (d != (double)(uint64_t)d)
            return td_fail(c, "expected an integer");
        eth_u256_set_u64(mag, (uint64_t)d);
        return SIGNER_OK;
    }
    s = c->h->json_string(v, &len);
    if (s == NULL)
        return td_fail(c, "expected an integer (JSON number, or decimal or "
                          "0x-hex string)");
    if (len > 0 && s[0] == '-') {
        *neg = 1;
        s++;
        len--;
    }
    st = eth_hex_has_prefix(s, len) ? eth_u256_parse_hex(mag, s + 2, len - 2)
                                    : eth_u256_parse_dec(mag, s, len);
    if (st == ETH_NUM_RANGE)
        return td_fail(c, "value out of range");
    if (st != ETH_NUM_OK)
        return td_fail(c, "expected an integer (JSON number, or decimal or "
                          "0x-hex string)");
    return SIGNER_OK;
}

/* uintN / intN: range-checked, intN as 256-bit two's complement. */
static int td_enc_int(td_ctx *c, unsigned char out[32], const td_ftype *t,
                      const signer_json *v)
{
    unsigned char be[32];
    eth_u256 mag;
    size_t n, i;
    int neg, bits, ok, rc;

    rc = td_int_value(c, &mag, &neg, v);
    if (rc != SIGNER_OK)
        return rc;
    n = eth_u256_to_be(be, &mag);
    bits = td_bits(be, n);
    if (n == 0)
        neg = 0; /* -0 */
    if (t->kind == TD_UINT) {
        ok = !neg && bits <= t->width;
    } else if (!neg) {
        ok = bits <= t->width - 1;
    } else { /* magnitude <= 2^(w-1): fewer bits, or exactly that power */
        ok = bits <= t->width - 1;
        if (bits == t->width) {
            ok = (be[0] & (be[0] - 1)) == 0;
            for (i = 1; i < n; i++)
                ok = ok && be[i] == 0;
        }
    }
    if (!ok)
        return td_fail(c, "value out of range for %s%d",
                       t->kind == TD_UINT ? "uint" : "int", t->width);
    memset(out, 0, 32);
    memcpy(out + 32 - n, be, n);
    if (neg) { /* two's complement: invert, add one */
        unsigned carry = 1;
        for (i = 32; i-- > 0;) {
            unsigned x = (unsigned)(unsigned char)~out[i] + carry;
            out[i] = (unsigned char)x;
            carry = x >> 8;
        }
    }
    return SIGNER_OK;
}

/* "0x" + even hex digits: sets *hex to the digits and *len to their count. */
static int td_hex_arg(td_ctx *c, const signer_json *v, const char **hex,
                      size_t *len)
{
    const char *s = c->h->json_string(v, len);

    if (s == NULL || !eth_hex_has_prefix(s, *len) || *len % 2 != 0 ||
        !eth_hex_is_digits(s + 2, *len - 2))
        return td_fail(c, "expected 0x-prefixed hex with an even number of "
                          "digits");
    *hex = s + 2;
    *len -= 2;
    return SIGNER_OK;
}

/* bytes: keccak256 of the bytes, decoded in chunks. */
static int td_enc_bytes(td_ctx *c, unsigned char out[32], const signer_json *v)
{
    unsigned char chunk[256];
    const char *hex;
    size_t len, off;
    eth_keccak k;
    int rc;

    rc = td_hex_arg(c, v, &hex, &len);
    if (rc != SIGNER_OK)
        return rc;
    eth_keccak_init(&k);
    for (off = 0; off < len; off += 2 * sizeof chunk) {
        size_t m = len - off < 2 * sizeof chunk ? len - off : 2 * sizeof chunk;
        if (!eth_hex_decode(chunk, hex + off, m))
            return td_fail(c, "bad hex");
        eth_keccak_update(&k, chunk, m / 2);
    }
    eth_keccak_final(&k, out);
    return SIGNER_OK;
}

/* One atomic value (not bytes / struct / array). */
static int td_enc_atomic(td_ctx *c, unsigned char out[32], const td_ftype *t,
                         const signer_json *v)
{
    const signer_host *h = c->h;
    const char *s;
    size_t len;
    int type;

    memset(out, 0, 32);
    switch (t->kind) {
    case TD_UINT:
    case TD_INT:
        return td_enc_int(c, out, t, v);
    case TD_BYTES:
        return td_enc_bytes(c, out, v);
    case TD_STRING:
        s = h->json_string(v, &len);
        if (s == NULL)
            return td_fail(c, "expected a string");
        eth_keccak256(out, s, len);
        return SIGNER_OK;
    case TD_BOOL:
        type = h->json_type(v);
        if (type != SIGNER_JSON_TRUE && type != SIGNER_JSON_FALSE)
            return td_fail(c, "expected true or false");
        out[31] = type == SIGNER_JSON_TRUE;
        return SIGNER_OK;
    case TD_ADDRESS:
        return eth_address(out + 12, c->err, c->errcap, h, v, c->path);
    case TD_BYTESN:
        if (td_hex_arg(c, v, &s, &len) != SIGNER_OK ||
            len != 2 * (size_t)t->width || !eth_hex_decode(out, s, len))
            return td_fail(c, "expected %d bytes as 0x-hex (bytes%d)",
                           t->width, t->width);
        return SIGNER_OK;
    default:
        return td_fail(c, "unsupported type");
    }
}

/* Encodes v as t with dims array levels left (0: the base type) into one
 * 32-byte word. */
static int td_enc(td_ctx *c, unsigned char out[32], const td_ftype *t,
                  int dims, const signer_json *v)
{
    const signer_host *h = c->h;
    size_t n, i, old;
    eth_keccak k;
    int rc = SIGNER_OK;

    if (c->depth >= TD_MAX_DEPTH)
        return td_fail(c, "nested more than %d levels", TD_MAX_DEPTH);
    if (dims == 0 && t->kind == TD_STRUCT)
        return td_hash_struct(c, out, t->strct, v);
    if (dims == 0)
        return td_enc_atomic(c, out, t, v);
    n = h->json_count(v);
    if (h->json_type(v) != SIGNER_JSON_ARRAY)
        return td_fail(c, "expected an array");
    if (t->dims[dims - 1] >= 0 && (long)n != t->dims[dims - 1])
        return td_fail(c, "expected an array of %ld elements, got %zu",
                       t->dims[dims - 1], n);
    c->depth++;
    eth_keccak_init(&k);
    for (i = 0; i < n && rc == SIGNER_OK; i++) {
        unsigned char word[32];
        old = td_push(c, "[%zu]", i);
        rc = td_enc(c, word, t, dims - 1, h->json_at(v, i, NULL));
        if (rc == SIGNER_OK) {
            eth_keccak_update(&k, word, 32);
            td_pop(c, old);
        }
    }
    eth_keccak_final(&k, out);
    c->depth--;
    return rc;
}

/* Checks that object v has no member besides T's fields, each once. */
static int td_members(td_ctx *c, const td_type *T, const signer_json *v)
{
    unsigned char seen[TD_MAX_FIELDS];
    size_t n = c->h->json_count(v), i, j, old;

    memset(seen, 0, sizeof seen);
    for (i = 0; i < n; i++) {
        const char *key = NULL;
        const signer_json *m = c->h->json_at(v, i, &key);
        if (T->skip_null && c->h->json_type(m) == SIGNER_JSON_NULL)
            continue;
        for (j = 0; j < T->nfields; j++)
            if (key != NULL && strcmp(key, T->fields[j].name) == 0)
                break;
        if (j == T->nfields || seen[j]) {
            old = td_push(c, ".%.64s", key ? key : "");
            (void)old;
            return td_fail(c, j == T->nfields ? "not a field of type %s"
                                              : "duplicate field (type %s)",
                           T->name);
        }
        seen[j] = 1;
    }
    return SIGNER_OK;
}

/* hashStruct(T, v) = keccak256(typeHash || enc(field) ...). */
static int td_hash_struct(td_ctx *c, unsigned char out[32], size_t ti,
                          const signer_json *v)
{
    const td_type *T = &c->types[ti];
    size_t i, old;
    eth_keccak k;
    int rc = SIGNER_OK;

    memset(out, 0, 32);
    if (c->h->json_type(v) != SIGNER_JSON_OBJECT)
        return td_fail(c, "expected an object of type %s", T->name);
    rc = td_members(c, T, v);
    if (rc != SIGNER_OK)
        return rc;
    c->depth++;
    eth_keccak_init(&k);
    eth_keccak_update(&k, T->typehash, 32);
    for (i = 0; i < T->nfields && rc == SIGNER_OK; i++) {
        const td_field *f = &T->fields[i];
        const signer_json *fv = c->h->json_get(v, f->name);
        unsigned char word[32];
        old = td_push(c, ".%s", f->name);
        if (fv == NULL)
            rc = td_fail(c, "required (a field of type %s)", T->name);
        else
            rc = td_enc(c, word, &f->t, f->t.ndims, fv);
        if (rc == SIGNER_OK) {
            eth_keccak_update(&k, word, 32);
            td_pop(c, old);
        }
    }
    eth_keccak_final(&k, out);
    c->depth--;
    return rc;
}

/* ---- domain ----------------------------------------------------------------- */

/* EIP712Domain from the domain's non-null fields, in ethers' order. */
static int td_derive_domain(td_ctx *c, const signer_json *domain)
{
    static const char *const names[5] = {"name", "version", "chainId",
                                         "verifyingContract", "salt"};
    static const char *const types[5] = {"string", "string", "uint256",
                                         "address", "bytes32"};
    td_type *D = &c->types[c->ntypes];
    size_t n = c->h->json_count(domain), i, j, old;
    int rc;

    for (i = 0; i < n; i++) {
        const char *key = NULL;
        (void)c->h->json_at(domain, i, &key);
        for (j = 0; j < 5; j++)
            if (key != NULL && strcmp(key, names[j]) == 0)
                break;
        if (j == 5) {
            old = td_push(c, ".%.64s", key ? key : "");
            (void)old;
            return td_fail(c, "not an EIP712Domain field (name, version, "
                              "chainId, verifyingContract, salt)");
        }
    }
    D->name = "EIP712Domain";
    D->skip_null = 1;
    D->fields = calloc(5, sizeof *D->fields);
    if (D->fields == NULL)
        return SIGNER_ERR_NOMEM;
    for (j = 0; j < 5; j++) {
        const signer_json *v = c->h->json_get(domain, names[j]);
        if (v == NULL || c->h->json_type(v) == SIGNER_JSON_NULL)
            continue;
        D->fields[D->nfields].name = names[j];
        rc = td_parse_type(c, &D->fields[D->nfields].t, types[j]);
        if (rc != SIGNER_OK)
            return rc;
        D->nfields++;
    }
    c->ntypes++; /* the derived type has no dependencies */
    c->sorted[c->ntypes - 1] = c->ntypes - 1;
    return td_typehash(c, c->ntypes - 1);
}

/* domainSeparator = hashStruct(EIP712Domain, domain). */
static int td_domain(td_ctx *c, unsigned char out[32],
                     const signer_json *domain)
{
    size_t di, old;
    int rc;

    old = td_push(c, ".domain");
    if (c->h->json_type(domain) != SIGNER_JSON_OBJECT)
        return td_fail(c, domain == NULL ? "required" : "expected an object");
    di = td_find(c, "EIP712Domain", strlen("EIP712Domain"));
    if (di == c->ntypes) {
        rc = td_derive_domain(c, domain);
        if (rc != SIGNER_OK)
            return rc;
        di = c->ntypes - 1;
        rc = td_hash_struct(c, out, di, domain);
    } else {
        rc = td_hash_struct(c, out, di, domain);
    }
    if (rc == SIGNER_OK)
        td_pop(c, old);
    return rc;
}

/* ---- digest and handler ------------------------------------------------------ */

/* Frees what td_load_types and td_derive_domain allocated. */
static void td_cleanup(td_ctx *c)
{
    size_t i;

    if (c->types != NULL)
        for (i = 0; i < c->cap; i++)
            free(c->types[i].fields);
    free(c->types);
    free(c->sorted);
    c->types = NULL;
    c->sorted = NULL;
}

/* Checks the members of typed_data; sets the four parts. */
static int td_parts(td_ctx *c, const signer_json *td, const signer_json **part)
{
    static const char *const names[4] = {"types", "primaryType", "domain",
                                         "message"};
    size_t n = c->h->json_count(td), i, j;

    if (c->h->json_type(td) != SIGNER_JSON_OBJECT)
        return td_fail(c, td == NULL ? "required"
                                     : "expected an object {types, "
                                       "primaryType, domain, message}");
    for (i = 0; i < n; i++) {
        const char *key = NULL;
        const signer_json *v = c->h->json_at(td, i, &key);
        for (j = 0; j < 4; j++)
            if (key != NULL && strcmp(key, names[j]) == 0)
                break;
        if (j == 4 || part[j] != NULL) {
            (void)td_push(c, ".%.64s", key ? key : "");
            return td_fail(c, j == 4 ? "unknown field" : "duplicate field");
        }
        part[j] = v;
    }
    for (j = 0; j < 4; j++)
        if (part[j] == NULL) {
            (void)td_push(c, ".%s", names[j]);
            return td_fail(c, "required");
        }
    return SIGNER_OK;
}

/* Resolves primaryType to a type index. */
static int td_primary(td_ctx *c, size_t *ti, const signer_json *v)
{
    const char *s = c->h->json_string(v, NULL);

    (void)td_push(c, ".primaryType");
    if (s == NULL)
        return td_fail(c, "expected a type name");
    *ti = td_find(c, s, strlen(s));
    if (*ti == c->ntypes)
        return td_fail(c, "\"%.64s\" is not in types", s);
    td_pop(c, strlen("typed_data"));
    return SIGNER_OK;
}

/* EIP-712 digest of typed_data td (see eth.h); errors name the path. */
int eth_typed_digest(unsigned char digest[32], char *err, size_t errcap,
                     const signer_host *h, const signer_json *td)
{
    const signer_json *part[4] = {NULL};
    unsigned char pre[2 + 32 + 32] = {0x19, 0x01};
    size_t ti = 0, old;
    td_ctx c;
    int rc;

    memset(digest, 0, 32);
    memset(&c, 0, sizeof c);
    c.h = h;
    c.err = err;
    c.errcap = errcap;
    (void)td_push(&c, "typed_data");
    rc = td_parts(&c, td, part);
    if (rc != SIGNER_OK)
        goto cleanup;
    old = td_push(&c, ".types");
    rc = td_load_types(&c, part[0]);
    if (rc != SIGNER_OK)
        goto cleanup;
    td_pop(&c, old);
    rc = td_primary(&c, &ti, part[1]);
    if (rc != SIGNER_OK)
        goto cleanup;
    rc = td_domain(&c, pre + 2, part[2]);
    if (rc != SIGNER_OK)
        goto cleanup;
    /* primaryType EIP712Domain: the digest covers the domain alone */
    if (strcmp(c.types[ti].name, "EIP712Domain") != 0) {
        old = td_push(&c, ".message");
        rc = td_hash_struct(&c, pre + 34, ti, part[3]);
        if (rc != SIGNER_OK)
            goto cleanup;
        td_pop(&c, old);
    }
    eth_keccak256(digest, pre, strcmp(c.types[ti].name, "EIP712Domain") != 0
                                   ? sizeof pre
                                   : 34);

cleanup:
    if (rc == SIGNER_ERR_NOMEM)
        snprintf(err, errcap, "out of memory");
    td_cleanup(&c);
    return rc;
}

/* sign_typed_data {key_id, secret, typed_data} -> {signature, digest}. */
int eth_sign_typed_data(void *pctx, signer_call *call, signer_reply *reply,
                        const signer_json *payload)
{
    const eth_ctx *c = pctx;
    const signer_host *h = c->host;
    unsigned char digest[32], addr[20];
    unsigned char *key = NULL;
    secp256k1_pubkey pub;
    char err[320], hex[2 * 32 + 3];
    int rc;

    rc = eth_check_payload(h, reply, payload, "typed_data");
    if (rc != SIGNER_OK)
        return rc;
    rc = eth_typed_digest(digest, err, sizeof err, h,
                          h->json_get(payload, "typed_data"));
    if (rc != SIGNER_OK)
        return h->reply_error(reply, rc, "%s", err);

    rc = eth_open_key(c, call, reply, payload, &key, addr, &pub);
    if (rc == SIGNER_OK)
        rc = eth_reply_sig65(c, reply, digest, key, &pub);
    h->secure_free(h, key, 32);
    if (rc != SIGNER_OK)
        return rc;
    eth_hex_encode(hex, digest, 32);
    if (h->reply_string(reply, "digest", hex) != SIGNER_OK)
        return h->reply_error(reply, SIGNER_ERR_NOMEM, "out of memory");
    return SIGNER_OK;
}
