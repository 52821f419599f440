/*
 * Internal interfaces of the Ethereum chain plugin (not installed).
 *
 * Units: eth_keccak.c (Keccak-256), eth_hex.c (hex codec), eth_u256.c
 * (256-bit quantities), eth_rlp.c (RLP encoder over a growable buffer),
 * eth_addr.c (addresses, EIP-55), eth_tx.c (transaction payload -> bytes),
 * eth_auth.c (EIP-7702 authorizations, sign_authorization), eth_typed.c
 * (EIP-712 typed data, sign_typed_data), eth_sign.c (recoverable
 * signatures), eth_plugin.c (init, op table, handlers).  Only plugin.h,
 * libsecp256k1 and libc are used.
 *
 * Conventions: 1/0 results unless documented; outputs first, inputs after,
 * every length right after its buffer.
 */
#ifndef ETH_H
#define ETH_H

#include <stddef.h>
#include <stdint.h>

#include <secp256k1.h>
#include <signer/plugin.h>

/* ---- constant-time test hooks (tests/ctime) ------------------------------ */

/*
 * Built with -DSIGNER_CTIME_TEST only for tests/ctime/ctime_eth, which runs
 * under valgrind with the private key marked undefined.  ETH_DECLASSIFY
 * marks a value derived from the key as public (defined) at the points
 * where it is public by design: a verdict the handler must branch on (key
 * valid or not), the public key, the signature once produced.  The
 * secp256k1 context is then created with SECP256K1_CONTEXT_DECLASSIFY so
 * that a libsecp256k1 built with valgrind support declassifies its own
 * internal verdicts likewise.  In the plugin proper both are no-ops.
 */
#ifdef SIGNER_CTIME_TEST
#include <valgrind/memcheck.h>
#define ETH_DECLASSIFY(p, len) ((void)VALGRIND_MAKE_MEM_DEFINED((p), (len)))
#define ETH_SECP_CONTEXT_FLAGS SECP256K1_CONTEXT_DECLASSIFY
#else
#define ETH_DECLASSIFY(p, len) ((void)(p), (void)(len))
#define ETH_SECP_CONTEXT_FLAGS SECP256K1_CONTEXT_NONE
#endif

/* ---- Keccak-256 (eth_keccak.c) ------------------------------------------ */

#define ETH_KECCAK_RATE 136 /* bytes per block for a 256-bit output */

typedef struct eth_keccak {
    uint64_t st[25];
    size_t pos; /* bytes absorbed into the current block */
} eth_keccak;

/* Starts a Keccak-256 computation. */
void eth_keccak_init(eth_keccak *k);
/* Absorbs in[0..len). */
void eth_keccak_update(eth_keccak *k, const void *in, size_t len);
/* Pads (Keccak 0x01 ... 0x80, not SHA-3's 0x06), writes the 32-byte digest
 * and wipes the state. */
void eth_keccak_final(eth_keccak *k, unsigned char out[32]);
/* One-shot Keccak-256 of in[0..len). */
void eth_keccak256(unsigned char out[32], const void *in, size_t len);

/* ---- hex (eth_hex.c) ----------------------------------------------------- */

/* Writes "0x" + 2*len lowercase hex digits + NUL into out (capacity at
 * least 2*len+3).  Returns the string length (2*len+2). */
size_t eth_hex_encode(char *out, const unsigned char *in, size_t len);
/* Writes exactly 2*len lowercase hex digits (no prefix, no NUL). */
void eth_hex_raw(char *out, const unsigned char *in, size_t len);
/* Decodes hexlen (even) hex digits of either case into out[hexlen/2].
 * Branch-free per character, so it may be used on secret input.  Returns 1,
 * or 0 (out wiped) if a character is not a hex digit or hexlen is odd. */
int eth_hex_decode(unsigned char *out, const char *hex, size_t hexlen)
    SIGNER_WARN_UNUSED;
/* The same for public data (addresses): a table lookup, not constant
 * time. */
int eth_hex_decode_public(unsigned char *out, const char *hex, size_t hexlen)
    SIGNER_WARN_UNUSED;
/* 1 if s[0..len) starts with "0x" or "0X". */
int eth_hex_has_prefix(const char *s, size_t len);
/* 1 if every character of s[0..len) is a hex digit. */
int eth_hex_is_digits(const char *s, size_t len);

/* ---- 256-bit unsigned integers (eth_u256.c) ------------------------------ */

typedef struct eth_u256 {
    uint64_t w[4]; /* little-endian 64-bit limbs */
} eth_u256;

enum eth_num_status {
    ETH_NUM_OK = 0,
    ETH_NUM_SYNTAX = 1, /* not digits / empty                 */
    ETH_NUM_RANGE = 2,  /* above 2^256-1                      */
    ETH_NUM_FRACTION = 3 /* ether amount not a whole wei       */
};

/* r = v. */
void eth_u256_set_u64(eth_u256 *r, uint64_t v);
/* 1 if a == 0. */
int eth_u256_is_zero(const eth_u256 *a);
/* -1, 0, 1 as a <, ==, > b. */
int eth_u256_cmp(const eth_u256 *a, const eth_u256 *b);
/* 1 if a fits in 64 bits. */
int eth_u256_fits_u64(const eth_u256 *a);
/* r = r*m + add; returns 0 (r unspecified) on overflow of 2^256. */
int eth_u256_mul_add(eth_u256 *r, uint64_t m, uint64_t add) SIGNER_WARN_UNUSED;
/* Parses hex digits (no prefix; leading zeros allowed). ETH_NUM_*. */
int eth_u256_parse_hex(eth_u256 *r, const char *s, size_t len);
/* Parses decimal digits (leading zeros allowed).  ETH_NUM_*. */
int eth_u256_parse_dec(eth_u256 *r, const char *s, size_t len);
/* Converts an ether amount given as a double to wei, exactly from the
 * double's shortest round-trip decimal form (%.*g, smallest precision that
 * strtod's back to d).  d must be finite and >= 0.  ETH_NUM_*. */
int eth_u256_from_ether(eth_u256 *r, double d);
/* The reference algorithm behind it (printf and strtod at increasing
 * precisions); eth_u256_from_ether takes a faster path where that gives the
 * same value. */
int eth_u256_from_ether_shortest(eth_u256 *r, double d);
/* Writes the minimal big-endian bytes of a (no leading zeros; zero has no
 * bytes) to out and returns their count (0..32). */
size_t eth_u256_to_be(unsigned char out[32], const eth_u256 *a);

/* ---- RLP (eth_rlp.c) ----------------------------------------------------- */

/* A byte buffer that starts in caller storage and moves to the heap when it
 * outgrows it.  After an allocation failure every operation fails. */
typedef struct eth_buf {
    unsigned char *p;
    size_t len, cap;
    unsigned char *heap; /* == p when on the heap */
    int oom;
} eth_buf;

/* Starts an empty buffer over stack[0..cap). */
void eth_buf_init(eth_buf *b, unsigned char *stack, size_t cap);
/* Frees heap storage (contents are public data: not wiped). */
void eth_buf_cleanup(eth_buf *b);
/* Ensures room for n more bytes and returns a pointer to them (len is not
 * advanced), or NULL when out of memory. */
unsigned char *eth_buf_reserve(eth_buf *b, size_t n);
/* Appends in[0..n).  1 ok, 0 out of memory. */
int eth_buf_append(eth_buf *b, const void *in, size_t n) SIGNER_WARN_UNUSED;

/* Writes the RLP header for a payload of len bytes; base 0x80 for strings,
 * 0xc0 for lists.  Returns its length (1..9). */
size_t eth_rlp_header(unsigned char out[9], unsigned base, size_t len);
/* Appends the RLP string of s[0..len) (a single byte < 0x80 as itself). */
int eth_rlp_bytes(eth_buf *b, const unsigned char *s, size_t len)
    SIGNER_WARN_UNUSED;
/* Appends an RLP integer (minimal big-endian; zero is 0x80). */
int eth_rlp_u256(eth_buf *b, const eth_u256 *v) SIGNER_WARN_UNUSED;
int eth_rlp_u64(eth_buf *b, uint64_t v) SIGNER_WARN_UNUSED;
/* Appends the RLP string of the bytes that hexlen hex digits encode, decoding
 * straight into the buffer.  0 on bad hex or out of memory. */
int eth_rlp_hex(eth_buf *b, const char *hex, size_t hexlen) SIGNER_WARN_UNUSED;
/* List encoding: remember eth_rlp_list_begin()'s offset, append the items,
 * then eth_rlp_list_end() inserts the header in front of them. */
size_t eth_rlp_list_begin(const eth_buf *b);
int eth_rlp_list_end(eth_buf *b, size_t start) SIGNER_WARN_UNUSED;

/* ---- addresses (eth_addr.c) ---------------------------------------------- */

#define ETH_ADDR_TEXT 43 /* "0x" + 40 + NUL */

enum eth_addr_status {
    ETH_ADDR_OK = 0,
    ETH_ADDR_SYNTAX = 1,  /* not 40 hex digits (optional 0x)       */
    ETH_ADDR_CHECKSUM = 2 /* mixed case with a wrong EIP-55 checksum */
};

/* Address of an uncompressed public key (65 bytes, 0x04 first). */
void eth_addr_from_pubkey(unsigned char out[20], const unsigned char pub[65]);
/* Address of a (valid) secret key; 0 if the key is invalid. */
int eth_addr_from_seckey(const secp256k1_context *ctx, unsigned char out[20],
                         const unsigned char key[32]) SIGNER_WARN_UNUSED;
/* EIP-55 checksummed text of addr: "0x" + 40 characters + NUL. */
void eth_addr_checksum(char out[ETH_ADDR_TEXT], const unsigned char addr[20]);
/* Parses 40 hex digits with optional 0x: all lower case, all upper case, or
 * mixed case with a valid EIP-55 checksum.  ETH_ADDR_*. */
int eth_addr_parse(unsigned char out[20], const char *s, size_t len);

/* ---- signatures (eth_sign.c) --------------------------------------------- */

/*
 * Signs hash with key (RFC 6979, low-S), then, unless pub is NULL, verifies
 * the serialized signature against pub (eth_sig_verify).  Writes r||s (64
 * bytes) and the recovery id.  Returns SIGNER_OK or SIGNER_ERR_INTERNAL
 * (outputs zeroed).
 */
int eth_sign_hash(const secp256k1_context *ctx, unsigned char rs[64],
                  int *recid, const unsigned char hash[32],
                  const unsigned char key[32], const secp256k1_pubkey *pub)
    SIGNER_WARN_UNUSED;
/* SIGNER_OK when r||s is a low-S signature of hash by pub, else
 * SIGNER_ERR_INTERNAL. */
int eth_sig_verify(const secp256k1_context *ctx, const unsigned char rs[64],
                   const unsigned char hash[32], const secp256k1_pubkey *pub)
    SIGNER_WARN_UNUSED;

/* ---- transactions (eth_tx.c) --------------------------------------------- */

typedef struct eth_tx {
    int type;                      /* 0, 1, 2, 3 (EIP-4844) or 4 (EIP-7702) */
    eth_u256 chain_id, nonce, gas; /* chain_id, nonce, gas <= 2^64-1 */
    eth_u256 gas_price, max_fee, max_prio, value;
    int has_to;
    unsigned char to[20];
    const char *data_hex; /* hex digits after "0x" (borrowed), may be "" */
    size_t data_hex_len;
    const signer_json *access_list; /* validated array, or NULL */
    eth_u256 max_fee_blob;           /* type 3: maxFeePerBlobGas */
    const signer_json *blob_hashes;  /* type 3: validated array */
    const signer_json *auth_list;    /* type 4: validated array */
    int has_from;                    /* "from" given: must be the key's */
    unsigned char from[20];
} eth_tx;

/* Writes the printf-style message to err and returns
 * SIGNER_ERR_BAD_REQUEST. */
int eth_fail(char *err, size_t errcap, const char *fmt, ...)
    SIGNER_PRINTF(3, 4);
/* Parses a quantity: JSON integer <= 2^53-1, or a "0x"-hex / decimal string
 * <= 2^256-1 (2^64-1 when u64).  name is the field path for messages. */
int eth_qty(eth_u256 *r, char *err, size_t errcap, const signer_host *h,
            const signer_json *v, const char *name, int u64)
    SIGNER_WARN_UNUSED;
/* An address (EIP-55 checked when mixed case); name is the path. */
int eth_address(unsigned char out[20], char *err, size_t errcap,
                const signer_host *h, const signer_json *v, const char *name)
    SIGNER_WARN_UNUSED;
/* 1 if v is 32 bytes as 64 hex digits (optional 0x); decoded into out when
 * out is not NULL. */
int eth_hex32(unsigned char *out, const signer_host *h, const signer_json *v);

/*
 * Validates transaction_payload tp (a JSON object) into tx.  On failure
 * returns SIGNER_ERR_BAD_REQUEST with a message naming the field in
 * err[0..errcap) ("transaction_payload.<field>: ...").
 */
int eth_tx_parse(eth_tx *tx, char *err, size_t errcap, const signer_host *h,
                 const signer_json *tp) SIGNER_WARN_UNUSED;

/* Appends the RLP items shared by the unsigned and signed forms (everything
 * up to and including accessList / data for legacy), without list header. */
int eth_tx_body(eth_buf *b, const signer_host *h, const eth_tx *tx)
    SIGNER_WARN_UNUSED;
/* Signing hash of the transaction whose body is in b (b is restored). */
int eth_tx_sighash(unsigned char out[32], eth_buf *b, const eth_tx *tx)
    SIGNER_WARN_UNUSED;
/* Appends the signature to the body in b, then writes the raw signed
 * transaction (type byte || RLP list for typed transactions) as a
 * NUL-terminated "0x" lowercase hex string into hex (an empty eth_buf the
 * caller cleans up) and its Keccak-256 into txhash. */
int eth_tx_finish(eth_buf *hex, unsigned char txhash[32], eth_buf *b,
                  const eth_tx *tx, const unsigned char rs[64], int recid)
    SIGNER_WARN_UNUSED;

/* ---- ERC-4337 user operations (eth_userop.c) ---------------------------- */

/*
 * Validates the user_operation form of a sign_userop payload ({user_operation,
 * entry_point, chainId, entry_point_version, optional signature_scheme and
 * eip7702_delegate}) and computes op_hash, the EntryPoint's getUserOpHash,
 * and to_sign, the 32 bytes to sign (op_hash, or its EIP-191 hash).  On
 * failure returns SIGNER_ERR_BAD_REQUEST with a message naming the field in
 * err[0..errcap) and zeroes both outputs.
 */
int eth_userop_hash(unsigned char op_hash[32], unsigned char to_sign[32],
                    char *err, size_t errcap, const signer_host *h,
                    const signer_json *payload) SIGNER_WARN_UNUSED;

/* ---- EIP-7702 authorizations (eth_auth.c) ------------------------------- */

/* Validates authorizationList[i] (a signed tuple {chainId, address, nonce,
 * yParity, r, s}); name is its path for messages.  SIGNER_OK or
 * SIGNER_ERR_BAD_REQUEST with the message in err. */
int eth_auth_check(char *err, size_t errcap, const signer_host *h,
                   const signer_json *tuple, const char *name)
    SIGNER_WARN_UNUSED;
/* Appends a validated authorizationList as an RLP list of
 * [chainId, address, nonce, yParity, r, s]. */
int eth_auth_list_rlp(eth_buf *b, const signer_host *h,
                      const signer_json *list) SIGNER_WARN_UNUSED;

/* ---- EIP-712 typed data (eth_typed.c) ------------------------------------ */

/* Computes the EIP-712 digest keccak256(0x19 0x01 || domainSeparator ||
 * hashStruct(message)) of typed_data {types, primaryType, domain, message}.
 * On bad input returns SIGNER_ERR_BAD_REQUEST with a message naming the
 * path ("typed_data.message.order.amount: ...") in err; SIGNER_ERR_NOMEM. */
int eth_typed_digest(unsigned char digest[32], char *err, size_t errcap,
                     const signer_host *h, const signer_json *td)
    SIGNER_WARN_UNUSED;

/* ---- handler helpers shared by the op units (eth_plugin.c) -------------- */

typedef struct eth_ctx {
    const signer_host *host;
    secp256k1_context *secp;
    int verify; /* settings.verify_signatures: verify every signature */
    struct eth_rpc_conf *rpc; /* eth_rpc.c's settings, NULL without ABI 1.2 */
} eth_ctx;

/* The public key of key, whose stored address is addr, for eth_sign_hash:
 * from the key's auxiliary slot in the host's key cache (ABI 1.3) when it
 * is there, else derived, checked against addr and put in the slot.
 * SIGNER_OK, or SIGNER_ERR_INTERNAL when key does not match addr. */
int eth_key_pubkey(const eth_ctx *c, signer_call *call, secp256k1_pubkey *pub,
                   const unsigned char *key, const unsigned char addr[20])
    SIGNER_WARN_UNUSED;

/* Checks that payload is an object whose members are all in the common set
 * (key_id, secret, hmac, timestamp) or equal to own, each at most once. */
int eth_check_payload(const signer_host *h, signer_reply *reply,
                      const signer_json *payload, const char *own);
/* Unseals the payload's key into *key (secure memory, 32 bytes, freed by
 * the caller with secure_free even on failure) and parses its address;
 * with verify_signatures on, also sets *pub (eth_key_pubkey). */
int eth_open_key(const eth_ctx *c, signer_call *call, signer_reply *reply,
                 const signer_json *payload, unsigned char **key,
                 unsigned char addr[20], secp256k1_pubkey *pub);
/* Signs hash and writes 0x r||s||v (v = 27 + recid) as field "signature";
 * the signature is verified against pub when verify_signatures is on. */
int eth_reply_sig65(const eth_ctx *c, signer_reply *reply,
                    const unsigned char hash[32], const unsigned char *key,
                    const secp256k1_pubkey *pub);

/* Op handlers outside eth_plugin.c. */
int eth_sign_typed_data(void *pctx, signer_call *call, signer_reply *reply,
                        const signer_json *payload);
int eth_sign_authorization(void *pctx, signer_call *call, signer_reply *reply,
                           const signer_json *payload);
/* The JSON-RPC endpoint POST /rpc (eth_rpc.c, a SIGNER_OP_RAW op). */
int eth_rpc(void *pctx, signer_call *call, signer_reply *reply,
            const signer_json *payload);
/* Reads settings rpc_downstream_url (SIGNER_RPC_DOWNSTREAM overrides it),
 * chain_id and rpc_timeout_ms into c->rpc.  SIGNER_OK or
 * SIGNER_ERR_CONFIG / SIGNER_ERR_NOMEM (logged). */
int eth_rpc_init(eth_ctx *c);
/* Frees what eth_rpc_init allocated. */
void eth_rpc_free(eth_ctx *c);

#endif /* ETH_H */
