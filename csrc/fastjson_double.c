/* fastjson_double.c: a double as JSON text, as orjson writes it: the
 * shortest digits that read back as the same double, null for NaN and
 * infinities. */
#include "fastjson.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* v (> 0, finite) correctly rounded to `prec` significant digits: the
 * digits as an integer in *mantissa, the power of ten of the first one in
 * *exp10, the double they read back as in *rounded. -1 on anything but
 * d.ddde[+-]x (e.g. a locale's decimal comma). */
static int round_digits(double v, int prec, uint64_t *mantissa, int *exp10, double *rounded)
{
    char sci[40];
    uint64_t m = 0;
    const char *q = sci;
    snprintf(sci, sizeof sci, "%.*e", prec - 1, v);
    *rounded = prec < 17 ? strtod(sci, NULL) : v; /* 17 digits always read back */
    for (; *q && *q != 'e'; q++) {
        if (*q >= '0' && *q <= '9')
            m = m * 10 + (uint64_t)(*q - '0');
        else if (*q != '.')
            return -1;
    }
    if (*q != 'e')
        return -1;
    *mantissa = m;
    *exp10 = atoi(q + 1);
    return 0;
}

/* The double nearest to mantissa (prec digits) x 10^(exp10 - prec + 1). */
static double decimal_value(uint64_t mantissa, int exp10, int prec)
{
    char text[40];
    snprintf(text, sizeof text, "%llue%d", (unsigned long long)mantissa, exp10 - prec + 1);
    return strtod(text, NULL);
}

/* The shortest digits that read back as the same double and, of those, the
 * closest to it (as orjson's shortest round-trip algorithm). The correctly
 * rounded 15 digits read back whenever 15 or fewer can (trailing zeros go);
 * with 16, a power of two's interval is lopsided (half as wide below), so
 * the nearest 16 digits may not read back while the next ones up do (2^-24);
 * 17 always do. Subnormals have fewer digits: every count from 1 is tried. Laid out as
 * orjson does: plain decimal for exponents -5 <= e < 16, else d.ddde+X (e-X).
 * NaN and infinities are null. */
int fj_put_double(struct ctx *c, double v)
{
    static const uint64_t pow10[18] = {1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull,
        10000000ull, 100000000ull, 1000000000ull, 10000000000ull, 100000000000ull, 1000000000000ull,
        10000000000000ull, 100000000000000ull, 1000000000000000ull, 10000000000000000ull,
        100000000000000000ull};
    char out[48];
    int prec, n = 0, exp10 = 0;
    uint64_t m = 0;
    if (!isfinite(v))
        return fj_put(c, "null", 4);
    if (signbit(v)) {
        out[n++] = '-';
        v = -v;
    }
    if (v == 0) {
        memcpy(out + n, "0.0", 3);
        return fj_put(c, out, (size_t)n + 3);
    }
    for (prec = v < 2.2250738585072014e-308 ? 1 : 15; prec <= 17; prec++) {
        double rounded;
        if (round_digits(v, prec, &m, &exp10, &rounded) != 0)
            return FJ_DECLINE;
        if (rounded == v)
            break;
        /* the other neighbour can only read back where the interval is
         * lopsided: a power of two (no mantissa bits), and from 16 digits */
        uint64_t bits;
        memcpy(&bits, &v, 8);
        if (prec < 16 || (bits & 0xfffffffffffffull) != 0)
            continue;
        /* the other neighbour at this precision: up if the rounding went down */
        uint64_t other = m;
        int other_exp = exp10;
        if (rounded < v) {
            if (++other == pow10[prec]) { other = pow10[prec - 1]; other_exp++; }
        } else {
            if (--other < pow10[prec - 1]) { other = pow10[prec] - 1; other_exp--; }
        }
        if (decimal_value(other, other_exp, prec) == v) {
            m = other;
            exp10 = other_exp;
            break;
        }
    }
    char digits[20];
    int nd = 0;
    while (m % 10 == 0 && m >= 10) /* trailing zeros go */
        m /= 10;
    uint64_t rest = m;
    do
        nd++;
    while (rest /= 10);
    for (int k = nd - 1; k >= 0; k--, m /= 10)
        digits[k] = (char)('0' + m % 10);
    if (exp10 >= 16 || exp10 < -5) {
        out[n++] = digits[0];
        if (nd > 1) {
            out[n++] = '.';
            memcpy(out + n, digits + 1, (size_t)nd - 1);
            n += nd - 1;
        }
        n += snprintf(out + n, sizeof out - (size_t)n, "e%s%d", exp10 < 0 ? "-" : "+", abs(exp10));
    } else if (exp10 >= 0) {
        for (int k = 0; k <= exp10; k++)
            out[n++] = k < nd ? digits[k] : '0';
        out[n++] = '.';
        if (nd > exp10 + 1) {
            memcpy(out + n, digits + exp10 + 1, (size_t)(nd - exp10 - 1));
            n += nd - exp10 - 1;
        } else {
            out[n++] = '0';
        }
    } else {
        out[n++] = '0';
        out[n++] = '.';
        for (int k = 0; k < -exp10 - 1; k++)
            out[n++] = '0';
        memcpy(out + n, digits, (size_t)nd);
        n += nd;
    }
    return fj_put(c, out, (size_t)n);
}
