/* Reads one JSON text per line on stdin and prints its RFC 8785 form per
 * line (or "ERROR cause"): the engine's JCS, for comparison with a
 * third-party implementation (tests/interop/jcs_hmac.mjs). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <string.h>

#include "jcs.h"
#include "json.h"

int main(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        cJSON *v = NULL;
        eng_json_error e;
        char *out = NULL;
        if (line[n - 1] == '\n')
            line[--n] = '\0';
        if (eng_json_parse(&v, NULL, line, (size_t)n, 1000, &e) != 0)
            printf("ERROR at %zu: %s\n", e.offset, e.cause);
        else if (eng_jcs_serialize(&out, NULL, v) != 0)
            printf("ERROR serialize\n");
        else
            printf("%s\n", out);
        free(out);
        eng_json_free(v);
    }
    free(line);
    return 0;
}
