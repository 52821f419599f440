/* HTTP routes of the engine: the REST routes the loaded plugins declare in
 * their op tables (docs/plugins.md), resolved for the transport through
 * eng_server_callbacks.route.  The transport only passes method, path and
 * body; names and paths of operations live in the plugins. */
#ifndef ENG_ROUTE_H
#define ENG_ROUTE_H

#include <stddef.h>

#include "loader.h"
#include "transport/transport.h"

/* Resolves an HTTP request.  path is normalised (no query, no repeated
 * slash).  POST / is the envelope route (operation NULL: the body names
 * it).  Otherwise the routes of the registry's ops are tried in load order:
 * a route whose if_field is present in the body (a top-level member of the
 * JSON object) wins over one without if_field; {key_id} segments are
 * copied to out->key_id.  Returns 0 (out->operation is the op's registered
 * name), 404 (no route has this path), or 405 (out->allow set). */
int eng_route_resolve(const eng_registry *r, const char *method,
                      const char *path, const char *body, size_t body_len,
                      eng_route_match *out);

/* 1 if body[0..len) is a JSON object with a top-level member named field
 * (compared byte for byte with its unescaped spelling); never copies or
 * logs the body. */
int eng_route_body_has(const char *body, size_t len, const char *field);

#endif
