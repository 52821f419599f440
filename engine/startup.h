/* Start-up: the data directory, the secure heap sized from the config, the
 * sealer and keystore rows the config names (bound together by the
 * sealer's check value), plugins and aliases; and --check-config, which
 * checks the same without creating anything. */
#ifndef ENG_STARTUP_H
#define ENG_STARTUP_H

#include <stdio.h>

#include "host.h"

/* Opens everything cfg names: data dir (0700), secure heap, key cache,
 * keystore, sealer, plugins, aliases.  Refuses a sealer key that does not
 * match the check value the keystore recorded, or a missing one when keys
 * exist, naming what to restore.  With cfg->check_only it creates nothing.
 * Returns 0, or -1 with one line naming the cause in err (and whatever this
 * call created is removed again). */
int eng_engine_open(eng_engine *e, eng_config *cfg, char *err,
                    size_t err_len);

/* Closes what eng_engine_open opened (wiping key material). */
void eng_engine_close(eng_engine *e);

/* Closes e and removes the data dir, master key and keystore files this
 * start created: for a start that fails later (a port in use). */
void eng_engine_abandon(eng_engine *e);

/* 1 if the sealer and keystore work now (GET /readyz), else 0. */
int eng_engine_ready(eng_engine *e);

/* Bytes of locked memory the config needs (a power of two): the key cache
 * as configured plus room for requests in flight. */
size_t eng_engine_secure_heap_bytes(const eng_config *cfg);

/* --check-config: parses every listen address, opens plugins, checks the
 * data dir, master key and keystore that exist, the master key against the
 * keystore's check value, and the locked memory the key cache needs; writes
 * a report to out.  Creates nothing.  0, or -1 with the cause in err. */
int eng_engine_check_config(eng_config *cfg, FILE *out, char *err,
                            size_t err_len);

#endif
