/* fastjson_md5_lanes.h: MD5 over many messages, one message a lane of a
 * vector of LANES 32-bit words (GCC/clang vector extensions: SSE2, AVX2 or
 * NEON, as the function's target allows). fastjson_md5_many.c includes it
 * once per kernel, with LANES, LANES_VEC (the vector type's name), LANES_FN
 * (the function's) and LANES_TARGET (its attributes) defined.
 *
 * A lane takes the next message when its own is done, so messages of any
 * length share the lanes; an idle lane hashes a block of zeros, thrown away.
 * When one lane is left with nothing to refill the others, the scalar code
 * finishes its message: one lane of a vector is slower than scalar code. */

typedef uint32_t LANES_VEC __attribute__((vector_size(4 * LANES)));

LANES_TARGET static void LANES_FN(const uint8_t *const *msgs, const size_t *lens, size_t n,
                                  uint8_t (*digests)[16])
{
    static const uint8_t idle[64];
    uint8_t last[LANES][128];                  /* each lane's padded end */
    size_t msg[LANES], block[LANES], whole[LANES], total[LANES];
    uint32_t words[16][LANES] __attribute__((aligned(4 * LANES)));
    LANES_VEC state[4];
    size_t next = 0, busy = 0;
    for (int j = 0; j < LANES; j++)
        msg[j] = SIZE_MAX;
    for (;;) {
        /* a lane without a message takes the next one, from the initial state */
        for (int j = 0; j < LANES; j++) {
            if (msg[j] != SIZE_MAX || next == n)
                continue;
            msg[j] = next++, busy++, block[j] = 0, whole[j] = lens[msg[j]] / 64;
            total[j] = whole[j] + fj_md5_tail(msgs[msg[j]], lens[msg[j]], last[j]);
            state[0][j] = FJ_MD5_A, state[1][j] = FJ_MD5_B, state[2][j] = FJ_MD5_C, state[3][j] = FJ_MD5_D;
        }
        if (busy <= 1)
            break;
        /* this block of every lane, word k of lane j at words[k][j] (little-endian) */
        for (int j = 0; j < LANES; j++) {
            const uint8_t *p = msg[j] == SIZE_MAX ? idle
                             : block[j] < whole[j] ? msgs[msg[j]] + 64 * block[j]
                             : last[j] + 64 * (block[j] - whole[j]);
            for (int k = 0; k < 16; k++, p += 4)
                words[k][j] = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        }
        LANES_VEC X[16];
        memcpy(X, words, sizeof X);
        LANES_VEC a = state[0], b = state[1], c = state[2], d = state[3];
#define T fj_md5_t
        ROUND1(0); ROUND1(4); ROUND1(8); ROUND1(12);
        ROUND2(16); ROUND2(20); ROUND2(24); ROUND2(28);
        ROUND3(32); ROUND3(36); ROUND3(40); ROUND3(44);
        ROUND4(48); ROUND4(52); ROUND4(56); ROUND4(60);
#undef T
        state[0] += a, state[1] += b, state[2] += c, state[3] += d;
        /* a lane whose message is done gives its digest */
        for (int j = 0; j < LANES; j++) {
            if (msg[j] == SIZE_MAX || ++block[j] < total[j])
                continue;
            for (int i = 0; i < 16; i++)
                digests[msg[j]][i] = (uint8_t)(state[i / 4][j] >> (8 * (i % 4)));
            msg[j] = SIZE_MAX, busy--;
        }
    }
    for (int j = 0; j < LANES; j++)
        if (msg[j] != SIZE_MAX) {
            uint32_t s[4] = { state[0][j], state[1][j], state[2][j], state[3][j] };
            fj_md5_from(s, msgs[msg[j]], lens[msg[j]], block[j], digests[msg[j]]);
        }
}
