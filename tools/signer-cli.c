/*
 * signer-cli — command-line client for signerd's HTTP API.
 *
 *   signer-cli [--url URL] [--timeout SEC] COMMAND [OPTIONS]
 *
 * Every signing command is sent as `POST /` with
 * `{"operation": NAME, "payload": {...}}`; the answer
 * `{"enclave_status": CODE, "enclave_result": {...}}` is unwrapped and the
 * result object is printed pretty on stdout.
 *
 * Exit status: 0 success, 1 the server answered an error (printed on stderr as
 * `error (HTTP CODE): message`), 2 the server could not be reached, 64 usage
 * error (bad options, unreadable input).
 *
 * Secrets: the private key (set-key) is read from stdin or --key-file, never
 * from argv.  The secret comes from --secret, --secret-file or the environment
 * variable SIGNER_SECRET.  Neither is ever printed; buffers that held them are
 * wiped before they are freed.
 *
 * --hmac (sign-tx, sign-userop, sign-message): the secret does not leave
 * this process; the request carries `timestamp` and `hmac`, the hex
 * HMAC-SHA256 keyed by the secret over
 *     operation "\n" key_id "\n" JCS(covered fields) "\n" timestamp
 * with JCS the RFC 8785 canonical JSON (engine/jcs.c, linked in), as
 * docs/hmac.md defines it.
 *
 * Caller-supplied JSON (sign-tx on stdin, call's payload) is validated with
 * cJSON but forwarded as the original text, so numbers keep their exact
 * spelling (`"value": 0.01` stays 0.01, not a re-printed double).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "jcs.h"
#include "util.h"

#define EXIT_ANSWER 1 /* server answered with an error */
#define EXIT_CONNECT 2 /* could not talk to the server */
#define EXIT_USAGE 64 /* bad command line or unreadable input */

#define DEFAULT_URL "http://127.0.0.1:8080"
#define CLI_MAX_INPUT (8u * 1024u * 1024u) /* stdin / file limit */
#define MAX_ANSWER (16u * 1024u * 1024u)

static const char *prog = "signer-cli";

/* ---------------------------------------------------------------- buffers */

/* A growable byte buffer; wiped before every free because it may hold a
 * secret or a key. */
typedef struct {
    char *p;
    size_t len;
    size_t cap;
    int overflow; /* set when a size limit was hit */
} buf;

static void wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        explicit_bzero(p, n);
}

static void buf_free(buf *b)
{
    if (b->p != NULL) {
        wipe(b->p, b->cap);
        free(b->p);
    }
    b->p = NULL;
    b->len = b->cap = 0;
}

/* Returns 0, or -1 when out of memory.  Grows without realloc so that no
 * un-wiped copy of old contents is left behind. */
static int buf_reserve(buf *b, size_t extra)
{
    size_t need, cap;
    char *n;

    if (extra > SIZE_MAX - b->len - 1)
        return -1;
    need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    n = malloc(cap);
    if (n == NULL)
        return -1;
    if (b->p != NULL) {
        memcpy(n, b->p, b->len);
        wipe(b->p, b->cap);
        free(b->p);
    }
    b->p = n;
    b->cap = cap;
    b->p[b->len] = '\0';
    return 0;
}

static int buf_add(buf *b, const char *s, size_t n)
{
    if (buf_reserve(b, n) < 0)
        return -1;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int buf_adds(buf *b, const char *s)
{
    return buf_add(b, s, strlen(s));
}

/* Appends s as a JSON string literal (with quotes). */
static int buf_add_json_string(buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    char esc[7];

    if (buf_add(b, "\"", 1) < 0)
        return -1;
    for (; *u; u++) {
        int rc;
        switch (*u) {
        case '"': rc = buf_add(b, "\\\"", 2); break;
        case '\\': rc = buf_add(b, "\\\\", 2); break;
        case '\n': rc = buf_add(b, "\\n", 2); break;
        case '\r': rc = buf_add(b, "\\r", 2); break;
        case '\t': rc = buf_add(b, "\\t", 2); break;
        default:
            if (*u < 0x20) {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[*u >> 4];
                esc[5] = hex[*u & 15];
                rc = buf_add(b, esc, 6);
            } else {
                rc = buf_add(b, (const char *)u, 1);
            }
        }
        if (rc < 0)
            return -1;
    }
    return buf_add(b, "\"", 1);
}

/* Reads all of f into b (up to CLI_MAX_INPUT).  Returns 0 or -1 (errno-style
 * message already printed). */
static int read_all(FILE *f, const char *what, buf *b)
{
    char chunk[4096];
    size_t n;

    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b->len + n > CLI_MAX_INPUT) {
            fprintf(stderr, "%s: %s is larger than %u bytes\n", prog, what,
                    CLI_MAX_INPUT);
            wipe(chunk, sizeof chunk);
            return -1;
        }
        if (buf_add(b, chunk, n) < 0) {
            fprintf(stderr, "%s: out of memory reading %s\n", prog, what);
            wipe(chunk, sizeof chunk);
            return -1;
        }
    }
    wipe(chunk, sizeof chunk);
    if (ferror(f)) {
        fprintf(stderr, "%s: cannot read %s: %s\n", prog, what, strerror(errno));
        return -1;
    }
    return 0;
}

/* Reads a whole file (or stdin for "-") into b. */
static int read_file(const char *path, const char *what, buf *b)
{
    FILE *f;
    int rc;

    if (strcmp(path, "-") == 0)
        return read_all(stdin, what, b);
    f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "%s: cannot open %s '%s': %s\n", prog, what, path,
                strerror(errno));
        return -1;
    }
    rc = read_all(f, what, b);
    fclose(f);
    return rc;
}

/* Strips leading and trailing whitespace in place (the buffer keeps its
 * allocation, so wiping still covers everything). */
static void buf_trim(buf *b)
{
    size_t start = 0, end = b->len;

    while (start < end && isspace((unsigned char)b->p[start]))
        start++;
    while (end > start && isspace((unsigned char)b->p[end - 1]))
        end--;
    if (start > 0)
        memmove(b->p, b->p + start, end - start);
    b->len = end - start;
    wipe(b->p + b->len, b->cap - b->len);
}

/* Reads one line from the terminal with echo off (prompt on stderr). */
static int read_hidden_line(const char *prompt, buf *b)
{
    struct termios old, quiet;
    int have_tty = tcgetattr(STDIN_FILENO, &old) == 0;
    int c, rc = 0;

    fputs(prompt, stderr);
    fflush(stderr);
    if (have_tty) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    while ((c = getchar()) != EOF && c != '\n') {
        char ch = (char)c;
        if (b->len >= 1024 || buf_add(b, &ch, 1) < 0) {
            rc = -1;
            break;
        }
    }
    if (have_tty)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    fputc('\n', stderr);
    return rc;
}

/* ------------------------------------------------------------------ HTTP */

typedef struct {
    const char *url; /* base, without trailing slash */
    long timeout;    /* seconds */
} client;

typedef struct {
    long status;
    buf body;
} answer;

static size_t on_body(char *data, size_t size, size_t nmemb, void *user)
{
    answer *a = user;
    size_t n = size * nmemb;

    if (a->body.len + n > MAX_ANSWER || buf_add(&a->body, data, n) < 0) {
        a->body.overflow = 1;
        return 0; /* abort the transfer */
    }
    return n;
}

/* Sends one request.  body == NULL means GET.  Returns 0 when an HTTP answer
 * arrived (any status), or EXIT_CONNECT after printing why not. */
static int http_request(const client *c, const char *path, const buf *body,
                        answer *out)
{
    CURL *h = NULL;
    struct curl_slist *hdr = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    buf url = {0};
    CURLcode rc;
    int ret = EXIT_CONNECT;

    out->status = 0;
    if (buf_adds(&url, c->url) < 0 || buf_adds(&url, path) < 0) {
        fprintf(stderr, "%s: out of memory\n", prog);
        goto cleanup;
    }
    h = curl_easy_init();
    if (h == NULL) {
        fprintf(stderr, "%s: cannot initialise libcurl\n", prog);
        goto cleanup;
    }
    curl_easy_setopt(h, CURLOPT_URL, url.p);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, c->timeout < 10 ? c->timeout : 10L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, c->timeout);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "signer-cli/" PACKAGE_VERSION);
    /* No redirects: a 3xx must not carry the secret to another host. */
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    hdr = curl_slist_append(hdr, "Accept: application/json");
    if (body != NULL) {
        hdr = curl_slist_append(hdr, "Content-Type: application/json");
        hdr = curl_slist_append(hdr, "Expect:");
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        /* Not COPYPOSTFIELDS: libcurl must not keep an un-wiped copy. */
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body->p);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->len);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);

    rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
        if (out->body.overflow)
            fprintf(stderr, "%s: answer from %s is larger than %u bytes\n",
                    prog, c->url, MAX_ANSWER);
        else
            fprintf(stderr, "%s: cannot reach signerd at %s: %s\n", prog, c->url,
                    errbuf[0] ? errbuf : curl_easy_strerror(rc));
        goto cleanup;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
    ret = 0;

cleanup:
    curl_slist_free_all(hdr);
    if (h != NULL)
        curl_easy_cleanup(h);
    buf_free(&url);
    return ret;
}

/* Prints j as indented JSON (two spaces) on f.  Scalars use cJSON's own
 * printer; depth is bounded by cJSON's nesting limit.  Returns 0 or -1. */
static int print_json(FILE *f, const cJSON *j, int depth)
{
    const cJSON *c;
    int i;

    if (cJSON_IsObject(j) || cJSON_IsArray(j)) {
        int obj = cJSON_IsObject(j);
        if (j->child == NULL) {
            fputs(obj ? "{}" : "[]", f);
            return 0;
        }
        fputs(obj ? "{\n" : "[\n", f);
        for (c = j->child; c != NULL; c = c->next) {
            for (i = 0; i <= depth; i++)
                fputs("  ", f);
            if (obj) {
                cJSON key = {0};
                char *k;
                key.type = cJSON_String;
                key.valuestring = c->string ? c->string : (char *)"";
                k = cJSON_PrintUnformatted(&key);
                if (k == NULL)
                    return -1;
                fprintf(f, "%s: ", k);
                cJSON_free(k);
            }
            if (print_json(f, c, depth + 1) < 0)
                return -1;
            fputs(c->next ? ",\n" : "\n", f);
        }
        for (i = 0; i < depth; i++)
            fputs("  ", f);
        fputs(obj ? "}" : "]", f);
        return 0;
    } else {
        char *t = cJSON_PrintUnformatted(j);
        if (t == NULL)
            return -1;
        fputs(t, f);
        cJSON_free(t);
        return 0;
    }
}

/* Prints an answer: the result object on success (exit 0), or
 * `error (HTTP CODE): message` on stderr (exit 1). */
static int print_answer(const answer *a)
{
    cJSON *root = NULL, *result, *err, *status;
    char *text = NULL;
    long code = a->status;
    int ret = EXIT_ANSWER;

    if (a->body.len > 0)
        root = cJSON_ParseWithLength(a->body.p, a->body.len);
    if (root == NULL) {
        /* Not JSON: show a short, printable excerpt. */
        size_t i, n = a->body.len < 200 ? a->body.len : 200;
        fprintf(stderr, "error (HTTP %ld): ", code);
        if (n == 0)
            fputs("empty or non-JSON answer", stderr);
        for (i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)a->body.p[i];
            fputc(isprint(ch) ? ch : ' ', stderr);
        }
        fputc('\n', stderr);
        return EXIT_ANSWER;
    }
    status = cJSON_GetObjectItemCaseSensitive(root, "enclave_status");
    if (cJSON_IsNumber(status) && (code < 100 || code == 200))
        code = (long)status->valuedouble;
    result = cJSON_GetObjectItemCaseSensitive(root, "enclave_result");
    if (result == NULL)
        result = root; /* not an envelope (e.g. /healthz): print it whole */

    if (a->status >= 200 && a->status < 300 && code >= 200 && code < 300) {
        if (print_json(stdout, result, 0) < 0) {
            fprintf(stderr, "%s: out of memory\n", prog);
            goto cleanup;
        }
        putchar('\n');
        ret = fflush(stdout) == 0 ? 0 : EXIT_ANSWER;
        goto cleanup;
    }
    err = cJSON_GetObjectItemCaseSensitive(result, "error");
    if (cJSON_IsString(err))
        fprintf(stderr, "error (HTTP %ld): %s\n", code, err->valuestring);
    else {
        text = cJSON_PrintUnformatted(result);
        fprintf(stderr, "error (HTTP %ld): %s\n", code,
                text ? text : "unreadable answer");
    }

cleanup:
    if (text != NULL)
        cJSON_free(text);
    cJSON_Delete(root);
    return ret;
}

/* ------------------------------------------------------- request building */

/* Common per-command options. */
typedef struct {
    const char *key_id;
    const char *secret_arg;  /* --secret */
    const char *secret_file; /* --secret-file */
    const char *key_file;    /* set-key: --key-file */
    const char *tx_file;     /* sign-tx: --tx-file */
    const char *hash;        /* sign-userop: --hash */
    const char *message;     /* sign-message: --message */
    int hmac;                /* --hmac: authenticate with an HMAC */
} cmd_opts;

/* Loads the secret into out: --secret-file, then --secret, then
 * $SIGNER_SECRET.  required: print an error when none is given.  Returns 1
 * when a secret was loaded, 0 when none was given, -1 on error. */
static int load_secret(const cmd_opts *o, buf *out, int required)
{
    const char *env = getenv("SIGNER_SECRET");

    if (o->secret_file != NULL) {
        if (read_file(o->secret_file, "secret file", out) < 0)
            return -1;
        buf_trim(out);
    } else if (o->secret_arg != NULL) {
        if (buf_adds(out, o->secret_arg) < 0)
            return -1;
    } else if (env != NULL && env[0] != '\0') {
        if (buf_adds(out, env) < 0)
            return -1;
    } else {
        if (required)
            fprintf(stderr,
                    "%s: no secret: give --secret S, --secret-file F or set "
                    "SIGNER_SECRET\n",
                    prog);
        return required ? -1 : 0;
    }
    if (out->len == 0 || memchr(out->p, '\0', out->len) != NULL) {
        fprintf(stderr, "%s: the secret is empty or contains a NUL byte\n", prog);
        return -1;
    }
    return 1;
}

/* Validates that text (len bytes) is one JSON object.  Returns the parsed
 * tree (caller deletes) or NULL after printing why. */
static cJSON *parse_object(const buf *text, const char *what)
{
    const char *end = NULL;
    cJSON *j;

    if (text->len == 0) {
        fprintf(stderr, "%s: %s is empty (expected a JSON object)\n", prog, what);
        return NULL;
    }
    j = cJSON_ParseWithLengthOpts(text->p, text->len, &end, 0);
    if (j == NULL) {
        size_t off = end ? (size_t)(end - text->p) : 0;
        const char *e = cJSON_GetErrorPtr();
        if (e != NULL && e >= text->p && e <= text->p + text->len)
            off = (size_t)(e - text->p);
        fprintf(stderr, "%s: %s is not valid JSON (near byte %zu)\n", prog,
                what, off);
        return NULL;
    }
    if (!cJSON_IsObject(j)) {
        fprintf(stderr, "%s: %s must be a JSON object\n", prog, what);
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

/* Wipes every string in a cJSON tree (they may be secrets).  Depth is
 * bounded by cJSON's own nesting limit (CJSON_NESTING_LIMIT). */
static void json_wipe(cJSON *j)
{
    cJSON *c;

    if (j->valuestring != NULL)
        wipe(j->valuestring, strlen(j->valuestring));
    for (c = j->child; c != NULL; c = c->next)
        json_wipe(c);
}

static void json_wipe_delete(cJSON *j)
{
    if (j == NULL)
        return;
    json_wipe(j);
    cJSON_Delete(j);
}

/* Sends {"operation": op, "payload": <payload text>} and prints the answer. */
static int post_operation(const client *c, const char *op, const buf *payload)
{
    buf body = {0};
    answer a = {0};
    int ret;

    if (buf_adds(&body, "{\"operation\":") < 0 ||
        buf_add_json_string(&body, op) < 0 ||
        buf_adds(&body, ",\"payload\":") < 0 ||
        buf_add(&body, payload->p, payload->len) < 0 || buf_adds(&body, "}") < 0) {
        fprintf(stderr, "%s: out of memory\n", prog);
        buf_free(&body);
        return EXIT_USAGE;
    }
    ret = http_request(c, "/", &body, &a);
    buf_free(&body);
    if (ret == 0)
        ret = print_answer(&a);
    buf_free(&a.body);
    return ret;
}

/* Appends `"name":"value",` to a payload under construction. */
static int add_field(buf *p, const char *name, const char *value, int comma)
{
    if ((comma && buf_adds(p, ",") < 0) || buf_add_json_string(p, name) < 0 ||
        buf_adds(p, ":") < 0 || buf_add_json_string(p, value) < 0)
        return -1;
    return 0;
}

/* --------------------------------------------------------------- commands */

static void usage_main(FILE *f)
{
    fprintf(f,
"Usage: %s [--url URL] [--timeout SEC] COMMAND [OPTIONS]\n"
"\n"
"Client for signerd's HTTP API (POST / with {operation, payload}).\n"
"\n"
"Commands:\n"
"  generate-key  --secret S                  create a key inside signerd\n"
"  set-key       --secret S [--key-file F]   import a private key (read from\n"
"                                            stdin or F, never from argv)\n"
"  sign-tx       --key-id ID --secret S [--tx-file F]\n"
"                                            sign the transaction JSON on stdin\n"
"  sign-userop   --key-id ID --secret S --hash H\n"
"                                            sign an ERC-4337 userOpHash\n"
"  sign-message  --key-id ID --secret S --message M\n"
"                                            EIP-191 personal_sign\n"
"  call OPERATION [PAYLOAD|-]                send any operation (payload JSON\n"
"                                            from the argument or stdin)\n"
"  health                                    GET /healthz\n"
"\n"
"Global options:\n"
"  --url URL       signerd base URL (default $SIGNER_URL or " DEFAULT_URL ")\n"
"  --timeout SEC   whole-request timeout in seconds (default 30)\n"
"  -h, --help      this help; COMMAND --help for a command's help\n"
"  --version       print the version\n"
"\n"
"The secret may also come from --secret-file F or the environment variable\n"
"SIGNER_SECRET (preferred: argv is visible to other users in ps).\n"
"\n"
"Exit status: 0 ok, 1 signerd answered an error (printed on stderr as\n"
"'error (HTTP CODE): message'), 2 signerd unreachable, 64 usage error.\n",
            prog);
}

static const char *const cmd_help[][2] = {
    {"generate-key",
"Usage: %s [--url URL] generate-key [--secret S | --secret-file F]\n"
"\n"
"Creates a new key inside signerd (operation generate_key) sealed with the\n"
"secret (20-128 printable ASCII characters, e.g. the SHA-256 hex of a\n"
"password).  Prints {key_id, address}.\n"
"The secret may come from $SIGNER_SECRET instead of --secret.\n"},
    {"set-key",
"Usage: %s [--url URL] set-key [--secret S | --secret-file F] [--key-file F]\n"
"\n"
"Imports an existing private key (operation set_key): 64 hex digits,\n"
"optionally 0x-prefixed, read from --key-file F or from stdin (prompted with\n"
"echo off on a terminal).  The key is never accepted on the command line.\n"
"Prints {key_id, address}.\n"
"The secret may come from $SIGNER_SECRET instead of --secret.\n"},
    {"sign-tx",
"Usage: %s [--url URL] sign-tx --key-id ID [--secret S | --secret-file F]\n"
"                              [--tx-file F] [--hmac]  < tx.json\n"
"\n"
"Signs a transaction (operation sign_transaction).  The transaction payload\n"
"is a JSON object read from stdin or --tx-file, e.g.\n"
"  {\"type\": 2, \"chainId\": 1, \"nonce\": 0, \"to\": \"0x...\",\n"
"   \"value\": \"1000000000000000000\", \"gas\": 21000,\n"
"   \"maxFeePerGas\": \"30000000000\", \"maxPriorityFeePerGas\": \"1000000000\"}\n"
"A JSON-number value means ether (0.01), a string means wei.  The text is\n"
"forwarded unchanged.  Prints {transaction_signed, transaction_hash}.\n"
"--hmac sends an HMAC of the request made with the secret instead of the\n"
"secret itself (docs/hmac.md).\n"},
    {"sign-userop",
"Usage: %s [--url URL] sign-userop --key-id ID [--secret S | --secret-file F]\n"
"                                  --hash H [--hmac]\n"
"\n"
"Signs an ERC-4337 userOpHash (32 bytes hex, 0x optional) with operation\n"
"sign_userop.  Prints {signature}: 65 bytes r||s||v, v in {27, 28}.\n"},
    {"sign-message",
"Usage: %s [--url URL] sign-message --key-id ID [--secret S | --secret-file F]\n"
"                                   --message M [--hmac]\n"
"\n"
"Signs an EIP-191 personal message (operation sign_message).  Prints\n"
"{signature}.\n"},
    {"call",
"Usage: %s [--url URL] call [--secret S | --secret-file F] OPERATION [PAYLOAD | -]\n"
"\n"
"Sends any operation, e.g.\n"
"  %s call ethereum-signer_sign_transaction \"$(cat request-payload.json)\"\n"
"PAYLOAD is a JSON object; '-' or no argument reads it from stdin (better for\n"
"payloads holding a secret or key: argv is visible in ps).  When a secret is\n"
"given (--secret, --secret-file or $SIGNER_SECRET) and the payload has no\n"
"\"secret\" member, it is added.  Prints the operation's result object.\n"},
    {"health",
"Usage: %s [--url URL] health\n"
"\n"
"GET /healthz.  Prints the answer; exit 0 when it is HTTP 200.\n"},
};

static int print_cmd_help(const char *cmd, FILE *f)
{
    size_t i;

    for (i = 0; i < sizeof cmd_help / sizeof cmd_help[0]; i++)
        if (strcmp(cmd_help[i][0], cmd) == 0) {
            /* Each "%s" in the text stands for the program name. */
            const char *t = cmd_help[i][1], *m;
            while ((m = strstr(t, "%s")) != NULL) {
                fwrite(t, 1, (size_t)(m - t), f);
                fputs(prog, f);
                t = m + 2;
            }
            fputs(t, f);
            return 1;
        }
    return 0;
}

enum {
    OPT_KEY_ID = 1000,
    OPT_SECRET,
    OPT_SECRET_FILE,
    OPT_KEY_FILE,
    OPT_TX_FILE,
    OPT_HASH,
    OPT_MESSAGE,
    OPT_HMAC,
};

/* Parses one command's options; which options are allowed is given by
 * `allowed` (a string of OPT_ codes as chars minus 1000).  Returns the index
 * of the first positional argument, -1 on error, -2 when help was shown. */
static int parse_cmd_opts(const char *cmd, int argc, char **argv,
                          const char *allowed, cmd_opts *o)
{
    static const struct option opts[] = {
        {"key-id", required_argument, NULL, OPT_KEY_ID},
        {"secret", required_argument, NULL, OPT_SECRET},
        {"secret-file", required_argument, NULL, OPT_SECRET_FILE},
        {"key-file", required_argument, NULL, OPT_KEY_FILE},
        {"tx-file", required_argument, NULL, OPT_TX_FILE},
        {"hash", required_argument, NULL, OPT_HASH},
        {"message", required_argument, NULL, OPT_MESSAGE},
        {"hmac", no_argument, NULL, OPT_HMAC},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c, li = -1;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+h", opts, &li)) != -1) {
        if (c == 'h') {
            print_cmd_help(cmd, stdout);
            return -2;
        }
        if (c == '?' || c == ':') {
            const char *bad = argv[optind - 1];
            if (optopt != 0 && optopt >= OPT_KEY_ID)
                fprintf(stderr, "%s %s: option %s needs a value\n", prog, cmd, bad);
            else
                fprintf(stderr, "%s %s: unknown option '%s' (see %s %s --help)\n",
                        prog, cmd, bad, prog, cmd);
            return -1;
        }
        if (strchr(allowed, (char)(c - OPT_KEY_ID + 'a')) == NULL) {
            fprintf(stderr, "%s %s: option --%s does not apply here (see %s %s --help)\n",
                    prog, cmd, li >= 0 ? opts[li].name : "?", prog, cmd);
            return -1;
        }
        li = -1;
        switch (c) {
        case OPT_KEY_ID: o->key_id = optarg; break;
        case OPT_SECRET: o->secret_arg = optarg; break;
        case OPT_SECRET_FILE: o->secret_file = optarg; break;
        case OPT_KEY_FILE: o->key_file = optarg; break;
        case OPT_TX_FILE: o->tx_file = optarg; break;
        case OPT_HASH: o->hash = optarg; break;
        case OPT_MESSAGE: o->message = optarg; break;
        case OPT_HMAC: o->hmac = 1; break;
        }
    }
    if (o->secret_arg != NULL && o->secret_file != NULL) {
        fprintf(stderr, "%s %s: give either --secret or --secret-file, not both\n",
                prog, cmd);
        return -1;
    }
    return optind;
}

/* Letters for `allowed`: OPT_x - OPT_KEY_ID + 'a'. */
#define A_KEY_ID "a"
#define A_SECRET "bc"
#define A_KEY_FILE "d"
#define A_TX_FILE "e"
#define A_HASH "f"
#define A_MESSAGE "g"
#define A_HMAC "h"

static int need(const char *cmd, const char *value, const char *opt)
{
    if (value == NULL || value[0] == '\0') {
        fprintf(stderr, "%s %s: %s is required (see %s %s --help)\n", prog, cmd,
                opt, prog, cmd);
        return -1;
    }
    return 0;
}

static int no_extra(const char *cmd, int argc, char **argv, int first)
{
    if (first < argc) {
        fprintf(stderr, "%s %s: unexpected argument '%s' (see %s %s --help)\n",
                prog, cmd, argv[first], prog, cmd);
        return -1;
    }
    return 0;
}

/* engine/jcs.c wipes its buffers with the engine's eng_wipe. */
void eng_wipe(void *p, size_t len)
{
    wipe(p, len);
}

/* Appends `,"timestamp":T,"hmac":"H"` for operation op on key_id, the MAC
 * covering the JSON object text covered (docs/hmac.md). */
static int add_hmac(buf *p, const buf *secret, const char *op,
                    const char *key_id, const char *covered)
{
    cJSON *c = cJSON_Parse(covered);
    char *jcs = NULL, *msg = NULL, kid[64], ts[24], hex[65];
    unsigned char mac[32];
    unsigned int mlen = 0;
    size_t jlen = 0, cap, i;
    int ret = -1;

    for (i = 0; key_id[i] != '\0' && i + 1 < sizeof kid; i++)
        kid[i] = (char)tolower((unsigned char)key_id[i]);
    kid[i] = '\0';
    snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
    if (c == NULL || eng_jcs_serialize(&jcs, &jlen, c) != 0) {
        fprintf(stderr, "%s: cannot canonicalise the payload for the HMAC\n",
                prog);
        goto cleanup;
    }
    cap = strlen(op) + strlen(kid) + jlen + strlen(ts) + 4;
    if ((msg = malloc(cap)) == NULL)
        goto cleanup;
    snprintf(msg, cap, "%s\n%s\n%s\n%s", op, kid, jcs, ts);
    if (HMAC(EVP_sha256(), secret->p, (int)secret->len,
             (const unsigned char *)msg, strlen(msg), mac, &mlen) == NULL ||
        mlen != sizeof mac)
        goto cleanup;
    for (i = 0; i < sizeof mac; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    if (buf_adds(p, ",\"timestamp\":") < 0 || buf_adds(p, ts) < 0 ||
        add_field(p, "hmac", hex, 1) < 0)
        goto cleanup;
    ret = 0;
cleanup:
    if (msg != NULL)
        wipe(msg, strlen(msg));
    free(msg);
    if (jcs != NULL)
        wipe(jcs, jlen);
    free(jcs);
    json_wipe_delete(c);
    wipe(mac, sizeof mac);
    return ret;
}

/* Appends the credential: ,"secret":S, or with --hmac the MAC of covered. */
static int add_auth(buf *p, const cmd_opts *o, const buf *secret,
                    const char *op, const char *covered)
{
    if (!o->hmac)
        return add_field(p, "secret", secret->p, 1);
    return add_hmac(p, secret, op, o->key_id, covered);
}

static int cmd_generate_key(const client *c, int argc, char **argv)
{
    cmd_opts o = {0};
    buf secret = {0}, payload = {0};
    int first, ret = EXIT_USAGE;

    first = parse_cmd_opts("generate-key", argc, argv, A_SECRET, &o);
    if (first == -2)
        return 0;
    if (first < 0 || no_extra("generate-key", argc, argv, first) < 0)
        goto cleanup;
    if (load_secret(&o, &secret, 1) < 0)
        goto cleanup;
    if (buf_adds(&payload, "{") < 0 || add_field(&payload, "secret", secret.p, 0) < 0 ||
        buf_adds(&payload, "}") < 0)
        goto cleanup;
    ret = post_operation(c, "generate_key", &payload);

cleanup:
    buf_free(&secret);
    buf_free(&payload);
    return ret;
}

static int cmd_set_key(const client *c, int argc, char **argv)
{
    cmd_opts o = {0};
    buf secret = {0}, key = {0}, payload = {0};
    int first, ret = EXIT_USAGE;

    first = parse_cmd_opts("set-key", argc, argv, A_SECRET A_KEY_FILE, &o);
    if (first == -2)
        return 0;
    if (first < 0 || no_extra("set-key", argc, argv, first) < 0)
        goto cleanup;
    if (load_secret(&o, &secret, 1) < 0)
        goto cleanup;
    if (o.key_file != NULL && strcmp(o.key_file, "-") != 0) {
        if (read_file(o.key_file, "key file", &key) < 0)
            goto cleanup;
    } else if (isatty(STDIN_FILENO)) {
        if (read_hidden_line("private key (hex, not echoed): ", &key) < 0) {
            fprintf(stderr, "%s set-key: cannot read the key\n", prog);
            goto cleanup;
        }
    } else if (read_all(stdin, "the key on stdin", &key) < 0) {
        goto cleanup;
    }
    buf_trim(&key);
    if (key.len == 0) {
        fprintf(stderr, "%s set-key: no private key given (stdin or --key-file)\n",
                prog);
        goto cleanup;
    }
    if (memchr(key.p, '\0', key.len) != NULL) {
        fprintf(stderr, "%s set-key: the key contains a NUL byte\n", prog);
        goto cleanup;
    }
    if (buf_adds(&payload, "{") < 0 || add_field(&payload, "eth_key", key.p, 0) < 0 ||
        add_field(&payload, "secret", secret.p, 1) < 0 || buf_adds(&payload, "}") < 0)
        goto cleanup;
    ret = post_operation(c, "set_key", &payload);

cleanup:
    buf_free(&secret);
    buf_free(&key);
    buf_free(&payload);
    return ret;
}

static int cmd_sign_tx(const client *c, int argc, char **argv)
{
    cmd_opts o = {0};
    buf secret = {0}, tx = {0}, payload = {0}, covered = {0};
    cJSON *parsed = NULL;
    int first, ret = EXIT_USAGE;

    first = parse_cmd_opts("sign-tx", argc, argv,
                           A_KEY_ID A_SECRET A_TX_FILE A_HMAC, &o);
    if (first == -2)
        return 0;
    if (first < 0 || no_extra("sign-tx", argc, argv, first) < 0 ||
        need("sign-tx", o.key_id, "--key-id") < 0)
        goto cleanup;
    if (load_secret(&o, &secret, 1) < 0)
        goto cleanup;
    if (o.tx_file == NULL && isatty(STDIN_FILENO))
        fprintf(stderr, "%s sign-tx: reading the transaction JSON from stdin "
                        "(end with Ctrl-D)\n", prog);
    if (read_file(o.tx_file ? o.tx_file : "-", "transaction JSON", &tx) < 0)
        goto cleanup;
    buf_trim(&tx);
    parsed = parse_object(&tx, "the transaction payload");
    if (parsed == NULL)
        goto cleanup;
    if (buf_adds(&covered, "{\"transaction_payload\":") < 0 ||
        buf_add(&covered, tx.p, tx.len) < 0 || buf_adds(&covered, "}") < 0)
        goto cleanup;
    if (buf_adds(&payload, "{") < 0 || add_field(&payload, "key_id", o.key_id, 0) < 0 ||
        add_auth(&payload, &o, &secret, "sign_transaction", covered.p) < 0 ||
        buf_adds(&payload, ",\"transaction_payload\":") < 0 ||
        buf_add(&payload, tx.p, tx.len) < 0 || buf_adds(&payload, "}") < 0)
        goto cleanup;
    ret = post_operation(c, "sign_transaction", &payload);

cleanup:
    json_wipe_delete(parsed);
    buf_free(&secret);
    buf_free(&tx);
    buf_free(&covered);
    buf_free(&payload);
    return ret;
}

static int cmd_sign_userop(const client *c, int argc, char **argv)
{
    cmd_opts o = {0};
    buf secret = {0}, payload = {0}, covered = {0};
    int first, ret = EXIT_USAGE;

    first = parse_cmd_opts("sign-userop", argc, argv,
                           A_KEY_ID A_SECRET A_HASH A_HMAC, &o);
    if (first == -2)
        return 0;
    if (first < 0 || no_extra("sign-userop", argc, argv, first) < 0 ||
        need("sign-userop", o.key_id, "--key-id") < 0 ||
        need("sign-userop", o.hash, "--hash") < 0)
        goto cleanup;
    if (load_secret(&o, &secret, 1) < 0)
        goto cleanup;
    if (buf_adds(&covered, "{\"transaction_payload\":{") < 0 ||
        add_field(&covered, "userOpHash", o.hash, 0) < 0 ||
        buf_adds(&covered, "}}") < 0)
        goto cleanup;
    if (buf_adds(&payload, "{") < 0 || add_field(&payload, "key_id", o.key_id, 0) < 0 ||
        add_auth(&payload, &o, &secret, "sign_userop", covered.p) < 0 ||
        buf_adds(&payload, ",\"transaction_payload\":{") < 0 ||
        add_field(&payload, "userOpHash", o.hash, 0) < 0 || buf_adds(&payload, "}}") < 0)
        goto cleanup;
    ret = post_operation(c, "sign_userop", &payload);

cleanup:
    buf_free(&secret);
    buf_free(&covered);
    buf_free(&payload);
    return ret;
}

static int cmd_sign_message(const client *c, int argc, char **argv)
{
    cmd_opts o = {0};
    buf secret = {0}, payload = {0}, covered = {0};
    int first, ret = EXIT_USAGE;

    first = parse_cmd_opts("sign-message", argc, argv,
                           A_KEY_ID A_SECRET A_MESSAGE A_HMAC, &o);
    if (first == -2)
        return 0;
    if (first < 0 || no_extra("sign-message", argc, argv, first) < 0 ||
        need("sign-message", o.key_id, "--key-id") < 0)
        goto cleanup;
    if (o.message == NULL) {
        fprintf(stderr, "%s sign-message: --message is required (see %s "
                        "sign-message --help)\n", prog, prog);
        goto cleanup;
    }
    if (load_secret(&o, &secret, 1) < 0)
        goto cleanup;
    if (buf_adds(&covered, "{") < 0 ||
        add_field(&covered, "message", o.message, 0) < 0 ||
        buf_adds(&covered, "}") < 0)
        goto cleanup;
    if (buf_adds(&payload, "{") < 0 || add_field(&payload, "key_id", o.key_id, 0) < 0 ||
        add_auth(&payload, &o, &secret, "sign_message", covered.p) < 0 ||
        add_field(&payload, "message", o.message, 1) < 0 || buf_adds(&payload, "}") < 0)
        goto cleanup;
    ret = post_operation(c, "sign_message", &payload);

cleanup:
    buf_free(&secret);
    buf_free(&covered);
    buf_free(&payload);
    return ret;
}

static int cmd_call(const client *c, int argc, char **argv)
{
    cmd_opts o = {0};
    buf secret = {0}, text = {0}, payload = {0};
    cJSON *parsed = NULL;
    const char *op;
    int first, have_secret, ret = EXIT_USAGE;

    first = parse_cmd_opts("call", argc, argv, A_SECRET, &o);
    if (first == -2)
        return 0;
    if (first < 0)
        goto cleanup;
    if (first >= argc) {
        fprintf(stderr, "%s call: OPERATION is required (see %s call --help)\n",
                prog, prog);
        goto cleanup;
    }
    op = argv[first];
    if (op[0] == '\0') {
        fprintf(stderr, "%s call: OPERATION is empty\n", prog);
        goto cleanup;
    }
    if (argc - first > 2) {
        fprintf(stderr, "%s call: unexpected argument '%s' (options go before "
                        "OPERATION)\n", prog, argv[first + 2]);
        goto cleanup;
    }
    if (argc - first == 2 && strcmp(argv[first + 1], "-") != 0) {
        if (buf_adds(&text, argv[first + 1]) < 0)
            goto cleanup;
    } else {
        if (isatty(STDIN_FILENO))
            fprintf(stderr, "%s call: reading the payload JSON from stdin "
                            "(end with Ctrl-D)\n", prog);
        if (read_all(stdin, "payload JSON", &text) < 0)
            goto cleanup;
    }
    buf_trim(&text);
    parsed = parse_object(&text, "the payload");
    if (parsed == NULL)
        goto cleanup;
    have_secret = load_secret(&o, &secret, 0);
    if (have_secret < 0)
        goto cleanup;
    if (have_secret && !cJSON_HasObjectItem(parsed, "secret")) {
        /* Splice "secret" in right after the opening brace, keeping the
         * caller's text (and its number spellings) intact. */
        int empty = cJSON_GetArraySize(parsed) == 0;
        if (buf_adds(&payload, "{") < 0 || add_field(&payload, "secret", secret.p, 0) < 0 ||
            (!empty && buf_adds(&payload, ",") < 0) ||
            buf_add(&payload, text.p + 1, text.len - 1) < 0)
            goto cleanup;
    } else if (buf_add(&payload, text.p, text.len) < 0) {
        goto cleanup;
    }
    ret = post_operation(c, op, &payload);

cleanup:
    json_wipe_delete(parsed);
    buf_free(&secret);
    buf_free(&text);
    buf_free(&payload);
    return ret;
}

static int cmd_health(const client *c, int argc, char **argv)
{
    cmd_opts o = {0};
    answer a = {0};
    cJSON *j = NULL;
    int first, ret;

    first = parse_cmd_opts("health", argc, argv, "", &o);
    if (first == -2)
        return 0;
    if (first < 0 || no_extra("health", argc, argv, first) < 0)
        return EXIT_USAGE;
    ret = http_request(c, "/healthz", NULL, &a);
    if (ret != 0)
        goto cleanup;
    if (a.body.len > 0)
        j = cJSON_ParseWithLength(a.body.p, a.body.len);
    if (a.status == 200) {
        if (j != NULL && print_json(stdout, j, 0) == 0) {
            putchar('\n');
        } else {
            buf_trim(&a.body);
            printf("%s\n", a.body.len ? a.body.p : "ok");
        }
        ret = 0;
    } else {
        ret = print_answer(&a);
    }

cleanup:
    cJSON_Delete(j);
    buf_free(&a.body);
    return ret;
}

static const struct {
    const char *name;
    int (*fn)(const client *, int, char **);
} commands[] = {
    {"generate-key", cmd_generate_key},
    {"set-key", cmd_set_key},
    {"sign-tx", cmd_sign_tx},
    {"sign-userop", cmd_sign_userop},
    {"sign-message", cmd_sign_message},
    {"call", cmd_call},
    {"health", cmd_health},
};

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    client cl;
    buf url = {0};
    const char *url_arg = getenv("SIGNER_URL");
    size_t i;
    int c, ret = EXIT_USAGE;

    if (argc > 0 && argv[0] != NULL) {
        const char *slash = strrchr(argv[0], '/');
        prog = slash ? slash + 1 : argv[0];
    }
    if (url_arg == NULL || url_arg[0] == '\0')
        url_arg = DEFAULT_URL;
    cl.timeout = 30;

    opterr = 0;
    while ((c = getopt_long(argc, argv, "+hV", opts, NULL)) != -1) {
        switch (c) {
        case 'u':
            url_arg = optarg;
            break;
        case 't': {
            char *end;
            long t;
            errno = 0;
            t = strtol(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || t < 1 || t > 3600) {
                fprintf(stderr, "%s: --timeout wants whole seconds 1..3600, got '%s'\n",
                        prog, optarg);
                return EXIT_USAGE;
            }
            cl.timeout = t;
            break;
        }
        case 'h':
            usage_main(stdout);
            return 0;
        case 'V':
            printf("%s %s\n", prog, PACKAGE_VERSION);
            return 0;
        default:
            if (optopt == 'u' || optopt == 't')
                fprintf(stderr, "%s: option %s needs a value\n", prog, argv[optind - 1]);
            else
                fprintf(stderr, "%s: unknown option '%s' (see %s --help)\n", prog,
                        argv[optind - 1], prog);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        usage_main(stderr);
        return EXIT_USAGE;
    }
    if (strncmp(url_arg, "http://", 7) != 0 && strncmp(url_arg, "https://", 8) != 0) {
        fprintf(stderr, "%s: --url must start with http:// or https://, got '%s'\n",
                prog, url_arg);
        return EXIT_USAGE;
    }
    if (buf_adds(&url, url_arg) < 0)
        return EXIT_USAGE;
    while (url.len > 0 && url.p[url.len - 1] == '/')
        url.p[--url.len] = '\0';
    cl.url = url.p;

    /* "help COMMAND" as a synonym of "COMMAND --help". */
    if (strcmp(argv[optind], "help") == 0) {
        if (optind + 1 < argc) {
            ret = print_cmd_help(argv[optind + 1], stdout) ? 0 : EXIT_USAGE;
            if (ret != 0)
                fprintf(stderr, "%s: unknown command '%s'\n", prog, argv[optind + 1]);
        } else {
            usage_main(stdout);
            ret = 0;
        }
        goto cleanup;
    }
    for (i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[optind], commands[i].name) == 0) {
            if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                fprintf(stderr, "%s: cannot initialise libcurl\n", prog);
                ret = EXIT_CONNECT;
                goto cleanup;
            }
            ret = commands[i].fn(&cl, argc - optind, argv + optind);
            curl_global_cleanup();
            goto cleanup;
        }
    }
    fprintf(stderr, "%s: unknown command '%s' (see %s --help)\n", prog,
            argv[optind], prog);

cleanup:
    buf_free(&url);
    return ret;
}
