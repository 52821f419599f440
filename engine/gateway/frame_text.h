/* Frame text for the gateway's hot path (docs/gateway.md, "Forwarding"):
 * the client's payload is spliced into the frame as sent instead of being
 * printed again from its parsed tree.  The scanner only walks JSON the
 * strict parser has already accepted; the builder's buffer holds secrets
 * (the client's secret, credentials) and is wiped whenever it moves or is
 * freed. */
#ifndef ENG_GATEWAY_FRAME_TEXT_H
#define ENG_GATEWAY_FRAME_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "aws/buf.h"

/* In json[0..len), a JSON object already accepted by the strict parser:
 * the value text of its top-level member name into *val, *val_len.
 * 1 when found, 0 when absent, -1 when a member name is written with
 * escapes (the caller then uses the parsed tree). */
int eng_gw_member_span(const char *json, size_t len, const char *name,
                       const char **val, size_t *val_len);

/* The id of an enclave's answer as the enclave lays it out,
 * {"id":DIGITS...: the id (1 to 15 digits, not 0) into *id and the offset
 * of the byte after its digits (< len), or 0 for another layout. */
size_t eng_gw_answer_id(const char *json, size_t len, uint64_t *id);

/* 1 if the object text obj[0..len) has no member ("{}", spaces allowed). */
int eng_gw_object_empty(const char *obj, size_t len);

/* The frame's text: the engine's wiping buffer (engine/aws/buf.h). */
typedef eng_aws_buf eng_gw_text;

/* Appends s as a JSON string (quoted; '"', '\\' and control characters
 * escaped). */
void eng_gw_text_str(eng_gw_text *t, const char *s);

/* Appends "name":"value" (value escaped), preceded by a comma unless
 * first. */
void eng_gw_text_member(eng_gw_text *t, int first, const char *name,
                        const char *value);

#endif
