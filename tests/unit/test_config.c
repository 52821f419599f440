/* Config parsing: defaults, every section, and every error path with its
 * file:line. */
#include "config.h"
#include "testutil.h"

#include "conf.h"
#include "gateway/gwconf.h"

static eng_config cfg;
static char err[1024];

static int load(const char *text)
{
    eng_config_free(&cfg);
    err[0] = '\0';
    return eng_config_load_string(&cfg, text, "/etc/x", err, sizeof err);
}

#define MIN_OK "plugins = ( { name = \"eth\"; } );\n"

static void test_minimal_defaults(void)
{
    CU_ASSERT_EQUAL_FATAL(load(MIN_OK), 0);
    CU_ASSERT_STRING_EQUAL(cfg.role, "standalone");
    CU_ASSERT_STRING_EQUAL(cfg.data_dir, "/etc/x/data");
    CU_ASSERT_EQUAL(cfg.n_listen, 1);
    CU_ASSERT_STRING_EQUAL(cfg.listen[0].address, "127.0.0.1:8080");
    CU_ASSERT_EQUAL(cfg.listen[0].proto, ENG_PROTO_HTTP);
    CU_ASSERT_EQUAL(cfg.n_plugins, 1);
    CU_ASSERT_STRING_EQUAL(cfg.plugins[0].path, "eth.so");
    CU_ASSERT_EQUAL(cfg.hmac_window, 60);
    CU_ASSERT_EQUAL(cfg.limits.max_body, 1048576);
    CU_ASSERT_STRING_EQUAL(cfg.sealer.type, "local");
    CU_ASSERT_PTR_NULL(eng_backend_conf_get(&cfg.sealer, "master_key_file"));
}

static void test_full(void)
{
    const char *text =
        "role = \"standalone\";\n"
        "data_dir = \"/var/lib/s\";\n"
        "plugin_dir = \"lib\";\n"
        "log_level = \"debug\";\n"
        "workers = 3;\n"
        "listen = ( { address = \"127.0.0.1:9000\"; protocol = \"http\"; },\n"
        "           { address = \"unix:/tmp/s.sock\"; protocol = \"frames\"; },\n"
        "           { address = \"127.0.0.1:9001\"; protocol = \"health\"; } );\n"
        "limits = { max_body = 4096; max_pipeline = 8; read_timeout_ms = 500; };\n"
        "sealer = { type = \"local\"; master_key_file = \"mk\"; };\n"
        "keystore = { type = \"sqlite\"; path = \"k.db\"; };\n"
        "auth = { hmac_window = 30; max_failures = 3; lockout_seconds = 9; };\n"
        "key_cache = { ttl_seconds = 5; max_entries = 10; };\n"
        "plugins = ( { name = \"eth\"; path = \"/opt/eth.so\"; settings = { a = 1; }; },\n"
        "            { name = \"test\"; } );\n"
        "aliases = { ethereum-signer_set_key = \"set_key\"; };\n";
    CU_ASSERT_EQUAL_FATAL(load(text), 0);
    CU_ASSERT_STRING_EQUAL(cfg.data_dir, "/var/lib/s");
    CU_ASSERT_STRING_EQUAL(cfg.plugin_dir, "/etc/x/lib");
    CU_ASSERT_EQUAL(cfg.log_level, 3);
    CU_ASSERT_EQUAL(cfg.workers, 3);
    CU_ASSERT_EQUAL_FATAL(cfg.n_listen, 3);
    CU_ASSERT_EQUAL(cfg.listen[1].proto, ENG_PROTO_FRAMES);
    CU_ASSERT_STRING_EQUAL(cfg.listen[1].address, "unix:/tmp/s.sock");
    CU_ASSERT_EQUAL(cfg.listen[2].proto, ENG_PROTO_HEALTH);
    CU_ASSERT_EQUAL(cfg.limits.max_body, 4096);
    CU_ASSERT_EQUAL(cfg.limits.max_pipeline, 8);
    CU_ASSERT_EQUAL(cfg.limits.read_timeout_ms, 500);
    CU_ASSERT_EQUAL(cfg.limits.max_header, 16384); /* default kept */
    CU_ASSERT_STRING_EQUAL(eng_backend_conf_get(&cfg.sealer, "master_key_file"), "mk");
    CU_ASSERT_STRING_EQUAL(eng_backend_conf_get(&cfg.keystore, "path"), "k.db");
    CU_ASSERT_EQUAL(cfg.hmac_window, 30);
    CU_ASSERT_EQUAL(cfg.max_failures, 3);
    CU_ASSERT_EQUAL(cfg.lockout_seconds, 9);
    CU_ASSERT_EQUAL(cfg.key_cache_ttl, 5);
    CU_ASSERT_EQUAL_FATAL(cfg.n_plugins, 2);
    CU_ASSERT_PTR_NOT_NULL(cfg.plugins[0].settings);
    CU_ASSERT_STRING_EQUAL(cfg.plugins[1].path, "test.so");
    CU_ASSERT_EQUAL_FATAL(cfg.n_aliases, 1);
    CU_ASSERT_STRING_EQUAL(cfg.aliases[0].from, "ethereum-signer_set_key");
    CU_ASSERT_STRING_EQUAL(cfg.aliases[0].to, "set_key");
}

/* Each bad config must fail with this text and the line number. */
static void expect_error(const char *text, const char *needle)
{
    CU_ASSERT_EQUAL(load(text), -1);
    if (strstr(err, needle) == NULL)
        fprintf(stderr, "\nexpected '%s' in '%s'\n", needle, err);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, needle));
}

/* Groups read by their role's own code refuse unknown members with the
 * same message as the rest of the config: the gateway's tls group. */
static void test_role_group_members(void)
{
    eng_gw_tls t;

    CU_ASSERT_EQUAL_FATAL(load(MIN_OK "tls = {\n cert = \"c.pem\";\n"
                               " key = \"k.pem\"; };\n"), 0);
    CU_ASSERT_EQUAL(eng_gw_tls_load(&t, &cfg, err, sizeof err), 1);
    CU_ASSERT_STRING_EQUAL(t.cert, "/etc/x/c.pem");
    eng_gw_tls_free(&t);
    CU_ASSERT_EQUAL_FATAL(load(MIN_OK "tls = {\n cert = \"c.pem\";\n"
                               " certs = \"k.pem\"; };\n"), 0);
    CU_ASSERT_EQUAL(eng_gw_tls_load(&t, &cfg, err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "<string>:4: unknown setting 'tls.certs'");
    eng_gw_tls_free(&t);
}

static void test_errors(void)
{
    expect_error(MIN_OK "bogus = 1;\n", "<string>:2: unknown setting 'bogus'");
    expect_error(MIN_OK "workers = \"two\";\n",
                 "<string>:2: 'workers' must be an integer, not a string");
    expect_error(MIN_OK "workers = 1000;\n", "out of range");
    expect_error(MIN_OK "log_level = \"loud\";\n",
                 "<string>:2: log_level 'loud'");
    expect_error(MIN_OK "role = \"bogus\";\n", "role 'bogus'");
    expect_error(MIN_OK "data_dir = 5;\n", "'data_dir' must be a string");
    expect_error(MIN_OK "limits = { max_bodyy = 1; };\n",
                 "unknown setting 'limits.max_bodyy'");
    expect_error(MIN_OK "limits = { max_body = \"big\"; };\n",
                 "'limits.max_body' must be an integer");
    expect_error(MIN_OK "limits = 5;\n", "'limits' must be a group");
    expect_error(MIN_OK "listen = ( { address = \"x:1\"; protocol = \"ftp\"; } );\n",
                 "protocol 'ftp'");
    expect_error(MIN_OK "listen = ( { protocol = \"http\"; } );\n",
                 "needs an address");
    expect_error(MIN_OK "listen = ( { address = \"x:1\"; port = 1; } );\n",
                 "unknown setting 'listen[].port'");
    expect_error(MIN_OK "listen = \"127.0.0.1:1\";\n", "'listen' must be a list");
    expect_error(MIN_OK "listen = ( { address = \"x:1\"; protocol = \"relay\"; "
                 "upstream = \"h:1\"; } );\n",
                 "protocol \"relay\" is only for role \"proxy\"");
    expect_error(MIN_OK "sealer = { type = \"kms\"; };\n",
                 "sealer.type 'kms' is not supported");
    expect_error(MIN_OK "keystore = { type = \"mongodb\"; };\n",
                 "keystore.type 'mongodb' is not supported");
    expect_error(MIN_OK "keystore = { type = \"dynamodb\"; path = \"x\"; };\n",
                 "unknown setting 'keystore.path'");
    /* Rows are picked by name; each row declares its own settings. */
    expect_error(MIN_OK "sealer = {\n type = \"kms\"; };\n",
                 "<string>:3: sealer.type 'kms' is not supported "
                 "(supported: \"local\", \"none\", \"aws-kms\")");
    expect_error(MIN_OK "keystore = { type = \"sqlite\"; table = \"t\"; };\n",
                 "<string>:2: unknown setting 'keystore.table'");
    expect_error(MIN_OK "sealer = { type = \"none\"; master_key_file = \"m\"; };\n",
                 "unknown setting 'sealer.master_key_file'");
    expect_error(MIN_OK "sealer = { master_key_file = 3; };\n",
                 "'sealer.master_key_file' must be a string");
    expect_error(MIN_OK "keystore = { type = 1; };\n",
                 "'keystore.type' must be a string");
    expect_error(MIN_OK "auth = { hmac_window = 0; };\n", "out of range");
    expect_error(MIN_OK "key_cache = { ttl = 1; };\n",
                 "unknown setting 'key_cache.ttl'");
    expect_error("plugins = ( { path = \"x.so\"; } );\n", "needs a name");
    expect_error("plugins = ( { name = \"a\"; }, { name = \"a\"; } );\n",
                 "listed twice");
    expect_error("plugins = ( { name = \"a\"; settings = 3; } );\n",
                 "settings must be a group");
    expect_error("plugins = ( { name = \"a\"; file = \"x\"; } );\n",
                 "unknown setting 'plugins[].file'");
    expect_error("log_level = \"info\";\n", "no plugins configured");
    expect_error(MIN_OK "aliases = { a = 1; };\n", "alias 'a' must name");
    expect_error(MIN_OK "workers = ;\n", "<string>:2: syntax error");
}

/* "none" rows for roles without a sealer or keystore. */
static void test_none_rows(void)
{
    CU_ASSERT_EQUAL_FATAL(load(MIN_OK "sealer = { type = \"none\"; };\n"
                                      "keystore = { type = \"none\"; };\n"),
                          0);
    CU_ASSERT_STRING_EQUAL(cfg.sealer.type, "none");
    CU_ASSERT_STRING_EQUAL(cfg.keystore.type, "none");
    CU_ASSERT_EQUAL(cfg.sealer.n_settings, 0);
    eng_config_free(&cfg);
}

static void test_file_errors(void)
{
    char *dir = tu_tmpdir(), path[512];
    FILE *f;
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    snprintf(path, sizeof path, "%s/s.conf", dir);
    eng_config_free(&cfg);
    CU_ASSERT_EQUAL(eng_config_load(&cfg, path, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot read the config file"));
    f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(MIN_OK "\n\nlimits = { idle_timeout_ms = \"x\"; };\n", f);
    fclose(f);
    eng_config_free(&cfg);
    CU_ASSERT_EQUAL(eng_config_load(&cfg, path, err, sizeof err), -1);
    /* The real file name and line 4. */
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "s.conf:4:"));
    f = fopen(path, "w");
    fputs("data_dir = \"d\";\n" MIN_OK, f);
    fclose(f);
    eng_config_free(&cfg);
    CU_ASSERT_EQUAL_FATAL(eng_config_load(&cfg, path, err, sizeof err), 0);
    /* Relative paths resolve against the file's directory. */
    snprintf(path, sizeof path, "%s/d", dir);
    CU_ASSERT_STRING_EQUAL(cfg.data_dir, path);
    tu_rmtree(dir);
    free(dir);
}

static void test_overrides(void)
{
    int replaced = 0;
    CU_ASSERT_EQUAL_FATAL(load(MIN_OK), 0);
    CU_ASSERT_EQUAL(eng_config_add_listen(&cfg, "127.0.0.1:1234", &replaced,
                                          err, sizeof err), 0);
    CU_ASSERT_EQUAL(eng_config_add_listen(&cfg, "frames=unix:/tmp/f.sock",
                                          &replaced, err, sizeof err), 0);
    CU_ASSERT_EQUAL_FATAL(cfg.n_listen, 2);
    CU_ASSERT_STRING_EQUAL(cfg.listen[0].address, "127.0.0.1:1234");
    CU_ASSERT_EQUAL(cfg.listen[0].proto, ENG_PROTO_HTTP);
    CU_ASSERT_STRING_EQUAL(cfg.listen[1].address, "unix:/tmp/f.sock");
    CU_ASSERT_EQUAL(cfg.listen[1].proto, ENG_PROTO_FRAMES);
    CU_ASSERT_EQUAL(eng_config_add_listen(&cfg, "health=127.0.0.1:9",
                                          &replaced, err, sizeof err), 0);
    CU_ASSERT_EQUAL_FATAL(cfg.n_listen, 3);
    CU_ASSERT_EQUAL(cfg.listen[2].proto, ENG_PROTO_HEALTH);
    CU_ASSERT_STRING_EQUAL(cfg.listen[2].address, "127.0.0.1:9");
    CU_ASSERT_EQUAL(eng_config_add_listen(&cfg, "frames=", &replaced, err,
                                          sizeof err), -1);
    CU_ASSERT_EQUAL(eng_config_set_data_dir(&cfg, "/srv/d"), 0);
    CU_ASSERT_STRING_EQUAL(cfg.data_dir, "/srv/d");
}

static void test_shipped_configs(void)
{
    char path[1024];
    const char *src = getenv("SIGNER_SRCDIR");
    snprintf(path, sizeof path, "%s/conf/standalone.conf", src ? src : ".");
    eng_config_free(&cfg);
    CU_ASSERT_EQUAL(eng_config_load(&cfg, path, err, sizeof err), 0);
    if (err[0])
        fprintf(stderr, "\n%s\n", err);
    CU_ASSERT_EQUAL(cfg.n_aliases, 3);
    CU_ASSERT_EQUAL(cfg.n_listen, 2);
}

int main(void)
{
    CU_pSuite s;
    int rc;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    s = CU_add_suite("config", NULL, NULL);
    TU_ADD(s, test_minimal_defaults);
    TU_ADD(s, test_full);
    TU_ADD(s, test_errors);
    TU_ADD(s, test_none_rows);
    TU_ADD(s, test_file_errors);
    TU_ADD(s, test_overrides);
    TU_ADD(s, test_shipped_configs);
    TU_ADD(s, test_role_group_members);
    rc = tu_run();
    eng_config_free(&cfg);
    return rc;
}
