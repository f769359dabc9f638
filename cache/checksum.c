#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cache/cache.h"
#include "util/banned.h"

/* Reflected Castagnoli polynomial, as SSE4.2's crc32 instruction uses. */
#define CRC32C_POLY 0x82f63b78u

static uint32_t table[8][256];
static bool table_ready;

static void make_table(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ CRC32C_POLY : c >> 1;
		table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			table[t][i] = (table[t - 1][i] >> 8) ^
				      table[0][table[t - 1][i] & 0xff];
	__atomic_store_n(&table_ready, true, __ATOMIC_RELEASE);
}

/* Slicing-by-8: the portable path, ~1 GB/s. */
static uint32_t crc_soft(uint32_t crc, const unsigned char *p, size_t len)
{
	if (!__atomic_load_n(&table_ready, __ATOMIC_ACQUIRE))
		make_table();
	while (len >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		w ^= crc;
		crc = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^
		      table[5][(w >> 16) & 0xff] ^ table[4][(w >> 24) & 0xff] ^
		      table[3][(w >> 32) & 0xff] ^ table[2][(w >> 40) & 0xff] ^
		      table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
	return crc;
}

#if defined(__x86_64__)
/* Every cached byte is checked on every read: the instruction makes that
 * cost ~0.1 ns per byte instead of ~1. */
__attribute__((target("sse4.2"))) static uint32_t
crc_hw(uint32_t crc, const unsigned char *p, size_t len)
{
	uint64_t c = crc;

	while (len >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
		p += 8;
		len -= 8;
	}
	crc = (uint32_t)c;
	while (len--)
		crc = __builtin_ia32_crc32qi(crc, *p++);
	return crc;
}

/*
 * CRCs are linear: the register after @crc then @n zero bytes is @crc
 * times x^(8n) modulo the polynomial. Multiplication in the reflected
 * domain, where bit 31 is x^0.
 */
static uint32_t mulmod(uint32_t a, uint32_t b)
{
	uint32_t p = 0;

	for (uint32_t m = 1u << 31; m; m >>= 1) {
		if (a & m)
			p ^= b;
		b = b & 1 ? (b >> 1) ^ CRC32C_POLY : b >> 1;
	}
	return p;
}

/* @crc advanced over @n zero bytes: square-and-multiply on x^(8n). */
static uint32_t shift(uint32_t crc, size_t n)
{
	uint32_t x2k = 1u << 30, xn = 1u << 31; /* x^1; x^0 */

	for (uint64_t e = (uint64_t)n * 8; e; e >>= 1) {
		if (e & 1)
			xn = mulmod(xn, x2k);
		x2k = mulmod(x2k, x2k);
	}
	return mulmod(xn, crc);
}

/*
 * The instruction takes 3 cycles and can start one per cycle: three
 * independent lanes run three times as fast as one, and are joined by
 * shifting (crc(AB) = shift(crc(A), |B|) ^ crc0(B)). Blocks are checked
 * on every read, so this is a tenth of a warm read's CPU saved twice.
 */
__attribute__((target("sse4.2"))) static uint32_t
crc_hw3(uint32_t crc, const unsigned char *p, size_t len)
{
	size_t lane = len / 3 / 8 * 8;
	const unsigned char *b = p + lane, *c = p + 2 * lane;
	uint64_t ca = crc, cb = 0, cc = 0;

	if (len < 4096)
		return crc_hw(crc, p, len);
	for (size_t i = 0; i < lane; i += 8) {
		uint64_t wa, wb, wc;

		memcpy(&wa, p + i, 8);
		memcpy(&wb, b + i, 8);
		memcpy(&wc, c + i, 8);
		ca = __builtin_ia32_crc32di(ca, wa);
		cb = __builtin_ia32_crc32di(cb, wb);
		cc = __builtin_ia32_crc32di(cc, wc);
	}
	crc = shift((uint32_t)ca, lane) ^ (uint32_t)cb;
	crc = shift(crc, lane) ^ (uint32_t)cc;
	return crc_hw(crc, p + 3 * lane, len - 3 * lane);
}

static bool have_hw(void)
{
	return __builtin_cpu_supports("sse4.2");
}
#else
static uint32_t crc_hw(uint32_t crc, const unsigned char *p, size_t len)
{
	return crc_soft(crc, p, len);
}

static uint32_t crc_hw3(uint32_t crc, const unsigned char *p, size_t len)
{
	return crc_soft(crc, p, len);
}

static bool have_hw(void)
{
	return false;
}
#endif

uint32_t rfs_crc32c(uint32_t crc, const void *buf, size_t len)
{
	crc = ~crc;
	crc = have_hw() ? crc_hw3(crc, buf, len) : crc_soft(crc, buf, len);
	return ~crc;
}

uint32_t rfs_adler32(uint32_t adler, const void *buf, size_t len)
{
	/* 5552 is the largest n with 255n(n+1)/2 + (n+1)(65520) < 2^32 */
	const unsigned char *p = buf;
	uint32_t a = adler & 0xffff, b = adler >> 16;

	while (len) {
		size_t n = len < 5552 ? len : 5552;

		len -= n;
		while (n--) {
			a += *p++;
			b += a;
		}
		a %= 65521;
		b %= 65521;
	}
	return (b << 16) | a;
}
