#include "config.h"
#include "auth.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "host.h"
#include "jcs.h"
#include "log.h"
#include "util.h"

/*
 * Failed attempts per (key_id, client): a chained hash map keyed by the
 * full pair, so one pair never displaces another's record (or its lock),
 * and a stranger's wrong guesses from one address never lock the owner out
 * at another.  A record goes when its pair succeeds, or when its backoff
 * has passed (pruned whenever its bucket is walked).  If the map is full a
 * failure cannot be recorded and attempts are refused (fail closed) rather
 * than let guessing go uncounted.
 */
#define FAIL_BUCKETS 4096
#define FAIL_MAX 1000000
#define CLIENT_MAX 80

struct fail_entry {
    struct fail_entry *next;
    char key_id[SIGNER_KEY_ID_LEN + 1];
    char client[CLIENT_MAX];
    int failures;
    int lockouts;         /* lockouts so far: the backoff exponent */
    int64_t first;        /* start of the counting window */
    int64_t locked_until;
};

/*
 * HMACs seen recently: an open-addressing set of 64-bit fingerprints (the
 * first 8 bytes of the MAC) with their expiry.  It grows by doubling and
 * drops expired entries when it rehashes; past REPLAY_MAX_SLOTS it stops
 * accepting HMAC requests (503) rather than forget one still valid.
 */
#define REPLAY_MIN_SLOTS 4096
#define REPLAY_MAX_SLOTS ((size_t)1 << 21) /* 32 MiB at most */

struct replay_slot {
    uint64_t fp;
    int64_t expires; /* 0: empty */
};

struct eng_auth {
    pthread_mutex_t lock;
    int max_failures;
    int lockout_seconds;
    int hmac_window;
    int64_t started; /* HMAC timestamps before this are refused */
    struct fail_entry *fails[FAIL_BUCKETS];
    size_t n_fails;
    struct replay_slot *replay;
    size_t replay_cap;  /* power of two */
    size_t replay_used; /* slots ever filled since the last rehash */
};

eng_auth *eng_auth_new(int max_failures, int lockout_seconds, int hmac_window)
{
    eng_auth *a = calloc(1, sizeof *a);
    if (a == NULL)
        return NULL;
    pthread_mutex_init(&a->lock, NULL);
    a->max_failures = max_failures;
    a->lockout_seconds = lockout_seconds > 0 ? lockout_seconds : 1;
    a->hmac_window = hmac_window;
    a->started = eng_unix_time();
    return a;
}

void eng_auth_free(eng_auth *a)
{
    size_t i;
    if (a == NULL)
        return;
    for (i = 0; i < FAIL_BUCKETS; i++) {
        struct fail_entry *f = a->fails[i], *n;
        for (; f != NULL; f = n) {
            n = f->next;
            free(f);
        }
    }
    pthread_mutex_destroy(&a->lock);
    free(a->replay);
    free(a);
}

/* ---- failure throttling --------------------------------------------------- */

/* The client part of a peer address: without its port ("1.2.3.4:5678" ->
 * "1.2.3.4"), so reconnecting is the same client, and for IPv6 its /64
 * ("[2001:db8::1]:80" -> "[2001:db8::]"), the block one subscriber holds. */
static void client_of(char out[CLIENT_MAX], const char *peer)
{
    const char *colon;
    char host[INET6_ADDRSTRLEN];
    unsigned char a6[16];
    size_t n, i;
    if (peer == NULL || *peer == '\0')
        peer = "unknown";
    n = strlen(peer);
    colon = strrchr(peer, ':');
    if (strncmp(peer, "unix", 4) != 0 && colon != NULL && colon[1] != '\0') {
        for (i = 1; colon[i] >= '0' && colon[i] <= '9'; i++)
            ;
        if (colon[i] == '\0')
            n = (size_t)(colon - peer);
    }
    if (n >= CLIENT_MAX)
        n = CLIENT_MAX - 1;
    memcpy(out, peer, n);
    out[n] = '\0';
    if (n > 2 && out[0] == '[' && out[n - 1] == ']' && n - 2 < sizeof host) {
        memcpy(host, out + 1, n - 2);
        host[n - 2] = '\0';
        if (inet_pton(AF_INET6, host, a6) == 1) {
            memset(a6 + 8, 0, 8);
            if (inet_ntop(AF_INET6, a6, host, sizeof host) != NULL)
                snprintf(out, CLIENT_MAX, "[%s]", host);
        }
    }
}

static unsigned bucket_of(const char *key_id, const char *client)
{
    unsigned h = 2166136261u;
    const char *s;
    for (s = key_id; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    for (s = client; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % FAIL_BUCKETS;
}

/* When a record may be forgotten: its lock and one more backoff period
 * have passed. */
static int64_t fail_expiry(const eng_auth *a, const struct fail_entry *f)
{
    int shift = f->lockouts < 6 ? f->lockouts : 6;
    int64_t base = f->locked_until > f->first ? f->locked_until : f->first;
    return base + ((int64_t)a->lockout_seconds << shift);
}

/* Walks the pair's bucket (lock held), pruning finished records; returns
 * the pair's record or NULL.  With unlink set, the record is taken out of
 * the map (the caller frees it). */
static struct fail_entry *fail_find(eng_auth *a, const char *key_id,
                                    const char *client, int64_t now,
                                    int unlink)
{
    struct fail_entry **pp = &a->fails[bucket_of(key_id, client)], *f;
    struct fail_entry *hit = NULL;
    while ((f = *pp) != NULL) {
        int mine = strcmp(f->key_id, key_id) == 0 &&
                   strcmp(f->client, client) == 0;
        if ((mine && unlink) || now > fail_expiry(a, f)) {
            *pp = f->next;
            a->n_fails--;
            if (mine && unlink)
                hit = f;
            else
                free(f);
            continue;
        }
        if (mine)
            hit = f;
        pp = &f->next;
    }
    return hit;
}

int eng_auth_admit(eng_auth *a, signer_reply *reply, const char *key_id,
                   const char *peer, int64_t now)
{
    struct fail_entry *f;
    char client[CLIENT_MAX];
    int64_t left = 0;
    if (a->max_failures <= 0)
        return SIGNER_OK;
    pthread_mutex_lock(&a->lock);
    if (a->n_fails == 0) { /* nothing recorded: nothing to look up */
        pthread_mutex_unlock(&a->lock);
        return SIGNER_OK;
    }
    client_of(client, peer);
    f = fail_find(a, key_id, client, now, 0);
    if (f != NULL && f->locked_until > now)
        left = f->locked_until - now;
    else if (f == NULL && a->n_fails >= FAIL_MAX)
        left = -1;
    pthread_mutex_unlock(&a->lock);
    if (left > 0)
        return eng_reply_error(reply, SIGNER_ERR_THROTTLED,
                               "key_id: too many failed attempts from this "
                               "client; retry in %lld s",
                               (long long)left);
    if (left < 0) {
        eng_log(SIGNER_LOG_ERROR, "failed-attempt table full: refusing "
                                  "authentication until records expire");
        return eng_reply_error(reply, SIGNER_ERR_UNAVAILABLE,
                               "too many keys with failed attempts; retry "
                               "later");
    }
    return SIGNER_OK;
}

/* Counts one failure of an existing or new record (lock held). */
static int fail_count(eng_auth *a, const char *key_id, const char *client,
                      int64_t now)
{
    struct fail_entry *f = fail_find(a, key_id, client, now, 0);
    if (f == NULL) {
        unsigned b = bucket_of(key_id, client);
        if (a->n_fails >= FAIL_MAX || (f = calloc(1, sizeof *f)) == NULL)
            return -1;
        snprintf(f->key_id, sizeof f->key_id, "%s", key_id);
        snprintf(f->client, sizeof f->client, "%s", client);
        f->first = now;
        f->next = a->fails[b];
        a->fails[b] = f;
        a->n_fails++;
    } else if (f->locked_until <= now && now - f->first > a->lockout_seconds) {
        f->failures = 0; /* a new counting window; lockouts are kept */
        f->first = now;
    }
    if (++f->failures >= a->max_failures) {
        int shift = f->lockouts < 6 ? f->lockouts : 6;
        f->locked_until = now + ((int64_t)a->lockout_seconds << shift);
        f->lockouts++;
        f->failures = 0;
        f->first = now;
    }
    return 0;
}

/* Records a success (forgets the pair) or a failure.  Returns 0, or -1
 * when a failure could not be recorded (the caller refuses). */
static int auth_record(eng_auth *a, const char *key_id, const char *peer,
                       int ok, int64_t now)
{
    char client[CLIENT_MAX];
    int rc = 0;
    if (a->max_failures <= 0)
        return 0;
    pthread_mutex_lock(&a->lock);
    if (ok && a->n_fails == 0) { /* nothing recorded: nothing to forget */
        pthread_mutex_unlock(&a->lock);
        return 0;
    }
    client_of(client, peer);
    if (ok)
        free(fail_find(a, key_id, client, now, 1));
    else
        rc = fail_count(a, key_id, client, now);
    pthread_mutex_unlock(&a->lock);
    return rc;
}

size_t eng_auth_failure_records(eng_auth *a)
{
    size_t n;
    pthread_mutex_lock(&a->lock);
    n = a->n_fails;
    pthread_mutex_unlock(&a->lock);
    return n;
}

/* ---- replay memory -------------------------------------------------------- */

/* Rebuilds the replay set with cap slots, keeping live entries. */
static int replay_rehash(eng_auth *a, size_t cap, int64_t now)
{
    struct replay_slot *n = calloc(cap, sizeof *n);
    size_t i, used = 0;
    if (n == NULL)
        return -1;
    for (i = 0; a->replay != NULL && i < a->replay_cap; i++) {
        const struct replay_slot *o = &a->replay[i];
        size_t j;
        if (o->expires <= now)
            continue;
        for (j = (size_t)o->fp & (cap - 1); n[j].expires != 0;
             j = (j + 1) & (cap - 1))
            ;
        n[j] = *o;
        used++;
    }
    free(a->replay);
    a->replay = n;
    a->replay_cap = cap;
    a->replay_used = used;
    return 0;
}

/* Makes room for one more entry (lock held); -1 when full of live ones. */
static int replay_reserve(eng_auth *a, int64_t now)
{
    size_t live = 0, cap, i;
    if (a->replay != NULL && 2 * (a->replay_used + 1) <= a->replay_cap)
        return 0;
    for (i = 0; a->replay != NULL && i < a->replay_cap; i++)
        live += a->replay[i].expires > now;
    cap = a->replay ? a->replay_cap : REPLAY_MIN_SLOTS;
    while (4 * (live + 1) > cap && cap < REPLAY_MAX_SLOTS)
        cap *= 2;
    if (2 * (live + 1) > cap || replay_rehash(a, cap, now) != 0)
        return -1; /* refuse, forget nothing */
    return 0;
}

/* Remembers mac until expires.  0 if new, 1 if seen (a replay), -1 if the
 * set is full or out of memory. */
static int replay_check(eng_auth *a, const unsigned char mac[32], int64_t now,
                        int64_t expires)
{
    uint64_t fp = 0;
    size_t i, j, free_slot = (size_t)-1;
    int rc = -1;
    for (i = 0; i < 8; i++)
        fp = fp << 8 | mac[i];
    pthread_mutex_lock(&a->lock);
    if (replay_reserve(a, now) != 0)
        goto out;
    /* The probe run ends at an empty slot; a live duplicate is in it. */
    for (j = (size_t)fp & (a->replay_cap - 1); a->replay[j].expires != 0;
         j = (j + 1) & (a->replay_cap - 1)) {
        if (a->replay[j].expires > now && a->replay[j].fp == fp) {
            rc = 1;
            goto out;
        }
        if (a->replay[j].expires <= now && free_slot == (size_t)-1)
            free_slot = j;
    }
    if (free_slot == (size_t)-1) {
        free_slot = j;
        a->replay_used++;
    }
    a->replay[free_slot].fp = fp;
    a->replay[free_slot].expires = expires;
    rc = 0;
out:
    pthread_mutex_unlock(&a->lock);
    return rc;
}

/* ---- credentials ---------------------------------------------------------- */

int eng_auth_secret_check(const cJSON *s, size_t *len)
{
    const uint64_t ones = 0x0101010101010101ull;
    const char *v;
    uint64_t w, out = 0;
    size_t i, n;
    if (!cJSON_IsString(s) || (v = s->valuestring) == NULL)
        return -1;
    n = strlen(v);
    if (n < ENG_SECRET_MIN || n > ENG_SECRET_MAX)
        return -1;
    /* printable ASCII, 0x20..0x7e: eight bytes at a time, a flag for any
     * byte below 0x20 or above 0x7e (exact "any" tests), then the tail */
    for (i = 0; i + 8 <= n; i += 8) {
        memcpy(&w, v + i, 8);
        out |= ((w - ones * 0x20) & ~w) | ((w + ones * 0x01) | w);
    }
    for (; i < n; i++)
        out |= (uint64_t)(v[i] < 0x20 || v[i] > 0x7e) << 7;
    if (out & (ones << 7))
        return -1;
    *len = n;
    return 0;
}

/* Parses payload.timestamp: a JSON integer or a decimal string. */
static int get_timestamp(const cJSON *t, int64_t *out)
{
    if (cJSON_IsNumber(t)) {
        double d = t->valuedouble;
        if (d < 0 || d > 1e12 || (double)(int64_t)d != d)
            return -1;
        *out = (int64_t)d;
        return 0;
    }
    if (cJSON_IsString(t) && t->valuestring != NULL) {
        const char *s = t->valuestring;
        int64_t v = 0;
        if (*s == '\0' || strlen(s) > 12)
            return -1;
        for (; *s; s++) {
            if (!isdigit((unsigned char)*s))
                return -1;
            v = v * 10 + (*s - '0');
        }
        *out = v;
        return 0;
    }
    return -1;
}

/* Reads a 64-hex-digit MAC (0x prefix allowed).  0 or -1. */
static int get_mac(unsigned char out[32], const cJSON *hm)
{
    const char *h;
    if (!cJSON_IsString(hm) || (h = hm->valuestring) == NULL)
        return -1;
    if (h[0] == '0' && (h[1] == 'x' || h[1] == 'X'))
        h += 2;
    return eng_hex_decode(out, 32, h);
}

int eng_auth_parse(eng_credential *cred, signer_reply *reply,
                   const cJSON *payload)
{
    const cJSON *sec = eng_json_get(payload, "secret");
    const cJSON *hm = eng_json_get(payload, "hmac");
    const cJSON *ts = eng_json_get(payload, "timestamp");
    memset(cred, 0, sizeof *cred);
    if (sec != NULL && hm != NULL)
        return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                               "secret, hmac: give one of them, not both");
    if (sec == NULL && hm == NULL)
        return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                               "secret: required (or hmac and timestamp)");
    if (sec != NULL) {
        if (eng_auth_secret_check(sec, &cred->secret_len) < 0)
            return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                                   "secret: must be a string of %d to %d "
                                   "printable ASCII characters",
                                   ENG_SECRET_MIN, ENG_SECRET_MAX);
        cred->secret = sec->valuestring;
        return SIGNER_OK;
    }
    cred->is_hmac = 1;
    if (get_mac(cred->mac, hm) < 0)
        return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                               "hmac: must be 64 hex digits");
    if (ts == NULL || get_timestamp(ts, &cred->timestamp) < 0)
        return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                               "timestamp: must be unix seconds (integer)");
    return SIGNER_OK;
}

/* ---- HMAC ---------------------------------------------------------------- */

static int listed(const char *const *fields, const char *name)
{
    for (; *fields != NULL; fields++)
        if (strcmp(*fields, name) == 0)
            return 1;
    return 0;
}

/* The object the MAC covers, made of references into the payload (free
 * with cJSON_Delete: the payload's items stay). */
static int covered_object(cJSON **out, signer_reply *reply,
                          const eng_auth_scope *s)
{
    static const char *const auth_fields[] = {"hmac", "timestamp", "secret",
                                              NULL};
    const cJSON *c;
    cJSON *obj = cJSON_CreateObject();
    *out = NULL;
    if (obj == NULL)
        return eng_reply_error(reply, SIGNER_ERR_NOMEM, "out of memory");
    for (c = s->payload ? s->payload->child : NULL; c != NULL; c = c->next) {
        if (listed(auth_fields, c->string))
            continue;
        if (s->fields != NULL && !listed(s->fields, c->string)) {
            if (strcmp(c->string, "key_id") == 0)
                continue; /* bound on its own line */
            cJSON_Delete(obj);
            return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                                   "%.64s: not covered by this operation's "
                                   "HMAC; send it with a secret instead",
                                   c->string);
        }
        if (!cJSON_AddItemReferenceToObject(obj, c->string, (cJSON *)c)) {
            cJSON_Delete(obj);
            return eng_reply_error(reply, SIGNER_ERR_NOMEM, "out of memory");
        }
    }
    *out = obj;
    return SIGNER_OK;
}

int eng_auth_message(char **msg, size_t *len, signer_reply *reply,
                     const eng_auth_scope *s, int64_t timestamp)
{
    cJSON *obj = NULL;
    char *jcs = NULL;
    size_t jlen = 0, cap;
    int rc, n;
    *msg = NULL;
    *len = 0;
    if ((rc = covered_object(&obj, reply, s)) != SIGNER_OK)
        return rc;
    rc = eng_jcs_serialize(&jcs, &jlen, obj);
    cJSON_Delete(obj);
    if (rc != SIGNER_OK)
        return eng_reply_error(reply, rc,
                               rc == SIGNER_ERR_NOMEM
                                   ? "out of memory"
                                   : "payload: cannot be canonicalised");
    cap = strlen(s->op) + strlen(s->key_id) + jlen + 32;
    if ((*msg = malloc(cap)) == NULL) {
        rc = eng_reply_error(reply, SIGNER_ERR_NOMEM, "out of memory");
    } else {
        n = snprintf(*msg, cap, "%s\n%s\n%s\n%lld", s->op, s->key_id, jcs,
                     (long long)timestamp);
        *len = (size_t)n;
    }
    eng_wipe(jcs, jlen);
    free(jcs);
    return rc;
}

void eng_auth_message_free(char *msg, size_t len)
{
    if (msg != NULL)
        eng_wipe(msg, len);
    free(msg);
}

int eng_auth_mac(unsigned char mac[32], const unsigned char *secret,
                 size_t secret_len, const char *msg, size_t len)
{
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *mc = m ? EVP_MAC_CTX_new(m) : NULL;
    OSSL_PARAM params[2];
    size_t outl = 0;
    int rc = SIGNER_ERR_INTERNAL;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (mc != NULL && EVP_MAC_init(mc, secret, secret_len, params) == 1 &&
        EVP_MAC_update(mc, (const unsigned char *)msg, len) == 1 &&
        EVP_MAC_final(mc, mac, &outl, 32) == 1 && outl == 32)
        rc = SIGNER_OK;
    EVP_MAC_CTX_free(mc);
    EVP_MAC_free(m);
    return rc;
}

/* Window, start-of-process and replay checks of a timestamp and a MAC
 * that matched. */
static int check_time(eng_auth *a, signer_reply *reply, int64_t t,
                      int64_t now)
{
    if (t > now + a->hmac_window || t < now - a->hmac_window)
        return eng_reply_error(reply, SIGNER_ERR_FORBIDDEN,
                               "timestamp: outside the allowed window of "
                               "%d seconds",
                               a->hmac_window);
    if (t < a->started)
        return eng_reply_error(reply, SIGNER_ERR_FORBIDDEN,
                               "timestamp: before the signer started (it "
                               "cannot tell a replay); use the current time");
    return SIGNER_OK;
}

/* Checks an HMAC credential.  *guess is set when the MAC was wrong (the
 * only HMAC failure that counts toward the lockout). */
static int verify_hmac(eng_auth *a, signer_reply *reply,
                       const eng_credential *c, const eng_auth_scope *s,
                       const unsigned char *secret, size_t slen, int64_t now,
                       int *guess)
{
    unsigned char mac[32];
    char *msg = NULL;
    size_t mlen = 0;
    int rc;
    if ((rc = check_time(a, reply, c->timestamp, now)) != SIGNER_OK)
        return rc;
    if ((rc = eng_auth_message(&msg, &mlen, reply, s, c->timestamp)) !=
        SIGNER_OK)
        return rc;
    if ((rc = eng_auth_mac(mac, secret, slen, msg, mlen)) != SIGNER_OK) {
        rc = eng_reply_error(reply, rc, "HMAC failed");
        goto cleanup;
    }
    if (!eng_ct_equal(mac, c->mac, 32)) {
        *guess = 1;
        rc = eng_reply_error(reply, SIGNER_ERR_FORBIDDEN,
                             "hmac: does not match");
        goto cleanup;
    }
    switch (replay_check(a, mac, now, c->timestamp + a->hmac_window + 1)) {
    case 0:
        break;
    case 1: /* not a guess (the MAC is right): not counted */
        rc = eng_reply_error(reply, SIGNER_ERR_FORBIDDEN,
                             "hmac: this request was already used (replay)");
        goto cleanup;
    default:
        rc = eng_reply_error(reply, SIGNER_ERR_UNAVAILABLE,
                             "hmac: too many recent HMAC requests to "
                             "remember; retry shortly");
        goto cleanup;
    }
cleanup:
    eng_auth_message_free(msg, mlen);
    eng_wipe(mac, sizeof mac);
    return rc;
}

/* Constant time over the maximum length: both secrets zero-padded to
 * ENG_SECRET_MAX, lengths compared without a branch. */
static int secret_equal(const char *given, size_t glen,
                        const unsigned char *stored, size_t slen)
{
    unsigned char h1[ENG_SECRET_MAX], h2[ENG_SECRET_MAX];
    int eq;
    memset(h1, 0, sizeof h1);
    memset(h2, 0, sizeof h2);
    memcpy(h1, given, glen <= sizeof h1 ? glen : 0);
    memcpy(h2, stored, slen <= sizeof h2 ? slen : 0);
    eq = eng_ct_equal(h1, h2, sizeof h1) & (glen == slen);
    eng_wipe(h1, sizeof h1);
    eng_wipe(h2, sizeof h2);
    return eq;
}

int eng_auth_verify(eng_auth *a, signer_reply *reply,
                    const eng_credential *c, const eng_auth_scope *s,
                    const char *client, const unsigned char *secret,
                    size_t slen, int64_t now)
{
    int rc, guess = 0;
    if (!c->is_hmac) {
        if (secret_equal(c->secret, c->secret_len, secret, slen)) {
            rc = SIGNER_OK;
        } else {
            guess = 1;
            rc = eng_reply_error(reply, SIGNER_ERR_FORBIDDEN,
                                 "secret: does not match the key");
        }
    } else {
        rc = verify_hmac(a, reply, c, s, secret, slen, now, &guess);
    }
    if (rc == SIGNER_OK)
        auth_record(a, s->key_id, client, 1, now);
    else if (guess && auth_record(a, s->key_id, client, 0, now) != 0)
        eng_log(SIGNER_LOG_ERROR, "failed-attempt table full: a failure "
                                  "could not be recorded");
    return rc;
}
