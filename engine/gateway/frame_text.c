/* Frame text for the gateway's hot path (frame_text.h). */
#include "config.h"
#include "gateway/frame_text.h"

#include <stdlib.h>
#include <string.h>

#include "json.h"

/* ---- scanning accepted JSON --------------------------------------------- */

static size_t skip_ws(const char *s, size_t i, size_t len)
{
    while (i < len &&
           (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* s[i] is the opening quote: the index after the closing one; *escaped
 * is set when the string holds a backslash escape. */
static size_t skip_string(const char *s, size_t i, size_t len, int *escaped)
{
    for (i++; i < len;) {
        const char *q = memchr(s + i, '"', len - i);
        size_t end = q != NULL ? (size_t)(q - s) : len, bs = 0;
        if (memchr(s + i, '\\', end - i) != NULL)
            *escaped = 1;
        while (end - bs > i && s[end - bs - 1] == '\\')
            bs++;
        if (end >= len || bs % 2 == 0)
            return end < len ? end + 1 : len;
        i = end + 1; /* an escaped quote */
    }
    return len;
}

/* The index after the value starting at s[i]. */
static size_t skip_value(const char *s, size_t i, size_t len)
{
    int depth = 0, esc = 0;
    if (i < len && s[i] == '"')
        return skip_string(s, i, len, &esc);
    if (i < len && s[i] != '{' && s[i] != '[') {
        while (i < len && strchr(",}] \t\r\n", s[i]) == NULL)
            i++;
        return i;
    }
    while (i < len) {
        if (s[i] == '"') {
            i = skip_string(s, i, len, &esc);
            continue;
        }
        if (s[i] == '{' || s[i] == '[')
            depth++;
        else if ((s[i] == '}' || s[i] == ']') && --depth == 0)
            return i + 1;
        i++;
    }
    return len;
}

int eng_gw_member_span(const char *json, size_t len, const char *name,
                       const char **val, size_t *val_len)
{
    size_t i = skip_ws(json, 0, len), n = strlen(name);
    if (i >= len || json[i] != '{')
        return -1;
    for (i = skip_ws(json, i + 1, len); i < len && json[i] == '"';) {
        size_t k = i + 1, key_end, v;
        int esc = 0;
        i = skip_string(json, i, len, &esc);
        key_end = i; /* one past the closing quote */
        if (esc)
            return -1;
        v = skip_ws(json, skip_ws(json, i, len) + 1, len); /* past ':' */
        i = skip_value(json, v, len);
        if (i > v && k + n + 1 == key_end && memcmp(json + k, name, n) == 0) {
            *val = json + v;
            *val_len = i - v;
            return 1;
        }
        i = skip_ws(json, i, len);
        if (i >= len || json[i] != ',')
            break;
        i = skip_ws(json, i + 1, len);
    }
    return 0;
}

size_t eng_gw_answer_id(const char *json, size_t len, uint64_t *id)
{
    size_t i = 6;
    uint64_t v = 0;
    if (len < 8 || memcmp(json, "{\"id\":", 6) != 0)
        return 0;
    for (; i < len && i < 6 + 15 && json[i] >= '0' && json[i] <= '9'; i++)
        v = v * 10 + (uint64_t)(json[i] - '0');
    if (i == 6 || v == 0 || i >= len || (json[i] >= '0' && json[i] <= '9'))
        return 0; /* none, 0, cut short or over 15 digits */
    *id = v;
    return i;
}

int eng_gw_object_empty(const char *obj, size_t len)
{
    size_t i = skip_ws(obj, 0, len);
    return i < len && obj[i] == '{' && (i = skip_ws(obj, i + 1, len)) < len &&
           obj[i] == '}';
}

/* ---- building ------------------------------------------------------------ */

void eng_gw_text_str(eng_gw_text *t, const char *s)
{
    size_t len = strlen(s), n = eng_json_escape(NULL, s, len);
    char *at = eng_aws_buf_extend(t, n + 2);
    if (at == NULL)
        return;
    at[0] = '"';
    eng_json_escape(at + 1, s, len);
    at[n + 1] = '"';
}

void eng_gw_text_member(eng_gw_text *t, int first, const char *name,
                        const char *value)
{
    if (!first)
        eng_aws_buf_add(t, ",", 1);
    eng_gw_text_str(t, name);
    eng_aws_buf_add(t, ":", 1);
    eng_gw_text_str(t, value);
}
