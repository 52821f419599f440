/* The proxy role's pure parts: the vsock-proxy YAML allowlist (accepted
 * forms and every error with its line), the allowlist, destinations, the
 * role's config checks, and literal addresses in the DNS cache. */
#include "config.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "conf.h"
#include "proxy.h"

static char err[512];

static int yaml(eng_allowlist *a, const char *text)
{
    memset(a, 0, sizeof *a);
    err[0] = '\0';
    return eng_allowlist_parse_yaml(a, text, "p.yaml", err, sizeof err);
}

static void test_yaml_forms(void)
{
    eng_allowlist a;
    const char *text =
        "# vsock-proxy's default file, and more\n"
        "---\n"
        "allowlist:\n"
        "- {address: kms.us-east-1.amazonaws.com, port: 443}\n"
        "- { address: \"kms.eu-west-1.amazonaws.com\" , port: 443 }  # eu\n"
        "-   address: 'acm.eu-west-1.amazonaws.com'\n"
        "    port: 8443\n"
        "\n";
    CU_ASSERT_EQUAL_FATAL(yaml(&a, text), 0);
    CU_ASSERT_EQUAL_FATAL(a.n, 3);
    CU_ASSERT_STRING_EQUAL(a.v[0].host, "kms.us-east-1.amazonaws.com");
    CU_ASSERT_EQUAL(a.v[0].port, 443);
    CU_ASSERT_STRING_EQUAL(a.v[1].host, "kms.eu-west-1.amazonaws.com");
    CU_ASSERT_STRING_EQUAL(a.v[2].host, "acm.eu-west-1.amazonaws.com");
    CU_ASSERT_EQUAL(a.v[2].port, 8443);
    CU_ASSERT_TRUE(eng_allowlist_has(&a, "KMS.us-east-1.amazonaws.com", 443));
    CU_ASSERT_FALSE(eng_allowlist_has(&a, "kms.us-east-1.amazonaws.com", 444));
    CU_ASSERT_FALSE(eng_allowlist_has(&a, "kms.us-east-2.amazonaws.com", 443));
    eng_allowlist_free(&a);
}

/* Each malformed file is refused with the line that is wrong. */
static void test_yaml_errors(void)
{
    static const struct {
        const char *text, *msg;
    } bad[] = {
        {"allowlist:\n- {address: a, port: 443}\n- {address: b, port: x}\n",
         "p.yaml:3: port 'x' is not a number"},
        {"allowlist:\n- {address: a, port: 70000}\n", "p.yaml:2: port '70000'"},
        {"allowlist:\n- {address: a, port: 443\n", "p.yaml:2: flow mapping"},
        {"allowlist:\n- {address: a, host: b}\n", "p.yaml:2: unknown key 'host'"},
        {"allowlist:\n- {address: a}\n", "p.yaml:2: allowlist item without a port"},
        {"allowlist:\n- port: 443\n\n", "p.yaml:2: allowlist item without an address"},
        {"allowlist:\n- {address: a, address: b, port: 1}\n", "p.yaml:2: address given twice"},
        {"allowlist:\n\t- {address: a, port: 1}\n", "p.yaml:2: tabs"},
        {"blocklist:\n- {address: a, port: 1}\n", "p.yaml:1: expected 'allowlist:'"},
        {"allowlist:\n- {address: a, port: 1}\nother: 1\n", "p.yaml:3: unexpected"},
        {"allowlist:\n  port: 1\n", "p.yaml:2: expected a list item"},
        {"allowlist:\n- {address: [a], port: 1}\n", "p.yaml:2: expected a plain"},
        {"# nothing\n", "no 'allowlist:' key"},
    };
    eng_allowlist a;
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CU_ASSERT_EQUAL(yaml(&a, bad[i].text), -1);
        if (strstr(err, bad[i].msg) == NULL)
            fprintf(stderr, "case %zu: got '%s', want '%s'\n", i, err,
                    bad[i].msg);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].msg));
        eng_allowlist_free(&a);
    }
}

static void test_split_dest(void)
{
    char host[64];
    int port = 0;

    CU_ASSERT_EQUAL(eng_proxy_split_dest("kms.x.amazonaws.com:443", host,
                                         sizeof host, &port), 0);
    CU_ASSERT_STRING_EQUAL(host, "kms.x.amazonaws.com");
    CU_ASSERT_EQUAL(port, 443);
    CU_ASSERT_EQUAL(eng_proxy_split_dest("[::1]:8443", host, sizeof host,
                                         &port), 0);
    CU_ASSERT_STRING_EQUAL(host, "::1");
    CU_ASSERT_EQUAL(port, 8443);
    CU_ASSERT_EQUAL(eng_proxy_split_dest("host", host, sizeof host, &port), -1);
    CU_ASSERT_EQUAL(eng_proxy_split_dest("host:0", host, sizeof host, &port), -1);
    CU_ASSERT_EQUAL(eng_proxy_split_dest("host:65536", host, sizeof host, &port), -1);
    CU_ASSERT_EQUAL(eng_proxy_split_dest(":443", host, sizeof host, &port), -1);
    CU_ASSERT_EQUAL(eng_proxy_split_dest("::1:443", host, sizeof host, &port), -1);
}

static eng_config cfg;

static int load(const char *text)
{
    eng_config_free(&cfg);
    err[0] = '\0';
    if (eng_config_load_string(&cfg, text, "/nonexistent", err, sizeof err) != 0)
        return -1;
    return eng_proxy_open(&cfg, 1, err, sizeof err);
}

#define RELAY(up) \
    "role = \"proxy\";\n" \
    "listen = ( { address = \"127.0.0.1:0\"; protocol = \"relay\"; " \
    "upstream = \"" up "\"; } );\n"

static void test_role_config(void)
{
    CU_ASSERT_EQUAL(load(RELAY("kms.a.amazonaws.com:443")
                         "proxy = { allowlist = ( { address = "
                         "\"kms.a.amazonaws.com\"; port = 443; } ); };\n"), 0);
    CU_ASSERT_EQUAL(cfg.listen[0].proto, ENG_PROTO_RELAY);
    CU_ASSERT_STRING_EQUAL(cfg.listen[0].upstream, "kms.a.amazonaws.com:443");
    eng_proxy_close();

    CU_ASSERT_EQUAL(load(RELAY("kms.b.amazonaws.com:443")
                         "proxy = { allowlist = ( { address = "
                         "\"kms.a.amazonaws.com\"; port = 443; } ); };\n"), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "upstream kms.b.amazonaws.com:443 is "
                                       "not on the allowlist"));
    CU_ASSERT_EQUAL(load(RELAY("kms.a.amazonaws.com:443")
                         "proxy = { allowlist = ( ); };\n"), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "allowlist is empty"));
    CU_ASSERT_EQUAL(load(RELAY("kms.a.amazonaws.com:443")
                         "proxy = {\n allowlist_file = \"missing.yaml\"; };\n"),
                    -1);
    if (strstr(err, "<string>:4:") == NULL)
        fprintf(stderr, "got '%s'\n", err);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "<string>:4: proxy.allowlist_file "
                                       "/nonexistent/missing.yaml"));
    CU_ASSERT_EQUAL(load(RELAY("kms.a.amazonaws.com:443")
                         "proxy = {\n speed = 1; };\n"), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "<string>:4: unknown setting "
                                       "'proxy.speed'"));
    CU_ASSERT_EQUAL(load(RELAY("kms.a.amazonaws.com:443")
                         "proxy = { connect_timeout_ms = 1; allowlist = ( { "
                         "address = \"kms.a.amazonaws.com\"; port = 443; } "
                         "); };\n"), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "connect_timeout_ms = 1 is out of "
                                       "range"));
    /* the config parser: relay needs an upstream and role proxy */
    CU_ASSERT_EQUAL(load("role = \"proxy\";\nlisten = ( { address = "
                         "\"127.0.0.1:0\"; protocol = \"relay\"; } );\n"
                         "proxy = { };\n"), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "needs upstream"));
    CU_ASSERT_EQUAL(load("listen = ( { address = \"127.0.0.1:0\"; protocol = "
                         "\"relay\"; upstream = \"a:1\"; } );\n"
                         "plugins = ( { name = \"eth\"; } );\n"), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "only for role \"proxy\""));
    CU_ASSERT_EQUAL(load("role = \"proxy\";\n"), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "the proxy group"));
    eng_config_free(&cfg);
}

static void test_dns_literals(void)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    eng_dns_waiter w;

    memset(&w, 0, sizeof w);
    CU_ASSERT_EQUAL(eng_dns_lookup(NULL, "127.0.0.1", 443, &w, &ss, &len), 0);
    CU_ASSERT_EQUAL(ss.ss_family, AF_INET);
    CU_ASSERT_EQUAL(ntohs(((struct sockaddr_in *)&ss)->sin_port), 443);
    CU_ASSERT_EQUAL(len, sizeof(struct sockaddr_in));
    CU_ASSERT_EQUAL(eng_dns_lookup(NULL, "::1", 8443, &w, &ss, &len), 0);
    CU_ASSERT_EQUAL(ss.ss_family, AF_INET6);
    /* a name needs the resolver */
    CU_ASSERT_EQUAL(eng_dns_lookup(NULL, "kms.a.amazonaws.com", 443, &w, &ss,
                                   &len), -1);
}

int main(void)
{
    CU_pSuite s;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    s = CU_add_suite("proxy", NULL, NULL);
    TU_ADD(s, test_yaml_forms);
    TU_ADD(s, test_yaml_errors);
    TU_ADD(s, test_split_dest);
    TU_ADD(s, test_role_config);
    TU_ADD(s, test_dns_literals);
    return tu_run();
}
