/* Attestation settings from the config file:
 *   attestation = "nsm" | "emulated";
 *   emulated_nsm = { module_id = "..."; signing_key = "leaf.key";
 *                    certificate = "leaf.pem"; cabundle = "cabundle.pem";
 *                    pcrs = { pcr0 = "<96 hex>"; pcr8 = "<96 hex>"; }; };
 * pcrs may also be a list of hex strings, PCR0 first.  See
 * docs/attestation.md. */
#include "config.h"
#include "attest/attest.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONF_ERR(s, ...)                                                      \
    do {                                                                      \
        conf_err(err, err_len, (s));                                          \
        snprintf(err + strlen(err), err_len - strlen(err), __VA_ARGS__);      \
        return -1;                                                            \
    } while (0)

static void conf_err(char *err, size_t err_len, const config_setting_t *s)
{
    const char *f = s ? config_setting_source_file(s) : NULL;
    snprintf(err, err_len, "%s:%u: ", f ? f : "config",
             s ? config_setting_source_line(s) : 0);
}

/* One PCR value from setting s at index idx. */
static int set_pcr(eng_attest_config *c, const config_setting_t *s,
                   unsigned long idx, char *err, size_t err_len)
{
    if (idx >= ENG_ATTEST_PCRS)
        CONF_ERR(s, "pcrs: index %lu out of range 0..31", idx);
    if (eng_hex_decode(c->pcrs[idx], ENG_ATTEST_PCR_LEN,
                   config_setting_get_string(s)) != 0)
        CONF_ERR(s, "pcrs: PCR%lu must be %d hex digits", idx,
                 2 * ENG_ATTEST_PCR_LEN);
    return 0;
}

/* pcrs = { pcr0 = "hex"; ... } or pcrs = [ "hex", ... ]. */
static int parse_pcrs(eng_attest_config *c, const config_setting_t *pcrs,
                      char *err, size_t err_len)
{
    int i, n = config_setting_length(pcrs);
    int is_group = config_setting_is_group(pcrs);
    if (!is_group && !config_setting_is_aggregate(pcrs))
        CONF_ERR(pcrs, "pcrs: must be a group { pcr0 = \"<hex>\"; } or a "
                 "list of hex strings");
    for (i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(pcrs, (unsigned)i);
        unsigned long idx = (unsigned long)i;
        if (is_group) {
            const char *name = config_setting_name(e);
            char *end = NULL;
            if (strncmp(name, "pcr", 3) != 0 || name[3] == '\0')
                CONF_ERR(e, "pcrs: unknown key %s (pcr0 .. pcr31)", name);
            idx = strtoul(name + 3, &end, 10);
            if (*end != '\0')
                CONF_ERR(e, "pcrs: unknown key %s (pcr0 .. pcr31)", name);
        }
        if (set_pcr(c, e, idx, err, err_len) != 0)
            return -1;
    }
    return 0;
}

/* A string member resolved against dir (or copied when as_path is 0). */
static int get_str(char **out, const config_setting_t *g, const char *key,
                   const char *dir, int as_path, char *err, size_t err_len)
{
    const config_setting_t *s = config_setting_get_member(g, key);
    const char *v;
    if (s == NULL)
        return 0;
    v = config_setting_get_string(s);
    if (v == NULL || *v == '\0')
        CONF_ERR(s, "%s: must be a non-empty string", key);
    *out = as_path && dir ? eng_path_join(dir, v) : strdup(v);
    if (*out == NULL)
        CONF_ERR(s, "out of memory");
    return 0;
}

static int parse_emulated(eng_attest_config *c, const config_setting_t *g,
                          const char *dir, char *err, size_t err_len)
{
    static const char *const keys[] = {"module_id", "signing_key",
                                       "certificate", "cabundle", "pcrs"};
    const config_setting_t *pcrs;
    int i, n = config_setting_length(g);
    if (!config_setting_is_group(g))
        CONF_ERR(g, "emulated_nsm: must be a group");
    for (i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(g, (unsigned)i);
        size_t k;
        for (k = 0; k < sizeof keys / sizeof keys[0]; k++)
            if (strcmp(config_setting_name(e), keys[k]) == 0)
                break;
        if (k == sizeof keys / sizeof keys[0])
            CONF_ERR(e, "emulated_nsm: unknown key %s", config_setting_name(e));
    }
    if (get_str(&c->module_id, g, "module_id", dir, 0, err, err_len) ||
        get_str(&c->signing_key, g, "signing_key", dir, 1, err, err_len) ||
        get_str(&c->certificate, g, "certificate", dir, 1, err, err_len) ||
        get_str(&c->cabundle, g, "cabundle", dir, 1, err, err_len))
        return -1;
    if (!c->signing_key || !c->certificate || !c->cabundle)
        CONF_ERR(g, "emulated_nsm: signing_key, certificate and cabundle "
                 "are required");
    pcrs = config_setting_get_member(g, "pcrs");
    return pcrs ? parse_pcrs(c, pcrs, err, err_len) : 0;
}

int eng_attest_conf_parse(eng_attest_config *out,
                          const config_setting_t *root, const char *dir,
                          char *err, size_t err_len)
{
    const config_setting_t *a = config_setting_get_member(root, "attestation");
    const config_setting_t *g = config_setting_get_member(root, "emulated_nsm");
    int rc = -1;
    memset(out, 0, sizeof *out);
    if (a == NULL || get_str(&out->attestation, root, "attestation", NULL, 0,
                             err, err_len) != 0) {
        if (a == NULL)
            snprintf(err, err_len, "attestation: missing (\"nsm\" or "
                     "\"emulated\")");
        goto cleanup;
    }
    if (eng_attest_methods_find(out->attestation) == NULL) {
        conf_err(err, err_len, a);
        snprintf(err + strlen(err), err_len - strlen(err), "attestation: "
                 "must be \"nsm\" or \"emulated\"");
        goto cleanup;
    }
    if (strcmp(out->attestation, "emulated") == 0) {
        if (g == NULL) {
            conf_err(err, err_len, a);
            snprintf(err + strlen(err), err_len - strlen(err),
                     "attestation = \"emulated\" needs an emulated_nsm group");
            goto cleanup;
        }
        if (parse_emulated(out, g, dir, err, err_len) != 0)
            goto cleanup;
    }
    rc = 0;
cleanup:
    if (rc != 0)
        eng_attest_config_cleanup(out);
    return rc;
}

void eng_attest_config_cleanup(eng_attest_config *c)
{
    if (c == NULL)
        return;
    free(c->attestation);
    free(c->device);
    free(c->module_id);
    free(c->signing_key);
    free(c->certificate);
    free(c->cabundle);
    memset(c, 0, sizeof *c);
}
