/* test-attrs.c - unit tests of lib/attrs.c: strict parsers and user.ipcfs.* xattrs. */
#include "tests/unit/util.h"

#include <fcntl.h>
#include <sys/xattr.h>

#define P IPC_XATTR_PREFIX

static int parse(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	return attr_parse_u64(s, strlen(s), min, max, out);
}

/* Gets an attribute as a string; returns attr_get's result. */
static int get(struct ipc_store *st, uint64_t id, const char *key, char *out, size_t cap)
{
	char name[128];
	int r;

	snprintf(name, sizeof(name), P "%s", key);
	memset(out, 0, cap);
	r = attr_get(st, id, name, out, cap - 1);
	return r;
}

static void expect_attr(struct ipc_store *st, uint64_t id, const char *key, const char *v)
{
	char buf[64];

	assert_int_equal(get(st, id, key, buf, sizeof(buf)), (int)strlen(v));
	assert_string_equal(buf, v);
}

static int set_as(struct ipc_store *st, uint64_t id, const char *key, const char *v,
		  const struct ipc_cred *c)
{
	char name[128];

	snprintf(name, sizeof(name), P "%s", key);
	return attr_set(st, id, name, v, strlen(v), 0, c);
}

/* --- parsers --- */

static void test_parse_u64_accepts(void **state)
{
	uint64_t v = 0;

	(void)state;
	assert_int_equal(parse("5", 0, 100, &v), 0);
	assert_int_equal(v, 5);
	assert_int_equal(parse("5\n", 0, 100, &v), 0);
	assert_int_equal(v, 5);
	assert_int_equal(parse("007", 0, 100, &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(parse("0", 0, 100, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(parse("100", 0, 100, &v), 0);
	assert_int_equal(v, 100);
	assert_int_equal(parse("1", 1, 1, &v), 0);
	assert_int_equal(parse("18446744073709551615", 0, UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
	/* the length is what counts, not a NUL */
	assert_int_equal(attr_parse_u64("42xyz", 2, 0, 100, &v), 0);
	assert_int_equal(v, 42);
}

static void test_parse_u64_rejects(void **state)
{
	const char *bad[] = {
		"", "\n", "-1", "+1", " 5", "5 ", "0x10", "1e3", "5\n\n", "\n5", "5\r\n",
		"5.0", "five", "1_000", "18446744073709551616", "99999999999999999999",
		"184467440737095516150",
	};
	uint64_t v = 12345;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(bad[i], 0, UINT64_MAX, &v), -EINVAL);
		/* the output is left alone */
		assert_int_equal(v, 12345);
	}
	/* a NUL inside the value */
	assert_int_equal(attr_parse_u64("1\0002", 3, 0, 100, &v), -EINVAL);
	/* out of range */
	assert_int_equal(parse("0", 1, 100, &v), -EINVAL);
	assert_int_equal(parse("101", 1, 100, &v), -EINVAL);
	assert_int_equal(v, 12345);
}

/* "A decimal number with no sign, spaces or other characters" (attrs.h):
 * leading zeros do not make a number invalid, however many there are. */
static void test_parse_u64_many_leading_zeros(void **state)
{
	uint64_t v = 0;

	(void)state;
	assert_int_equal(parse("0000000000000000000001024", 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, 1024);
}

static void test_parse_framing(void **state)
{
	uint8_t f = 99;

	(void)state;
	assert_int_equal(attr_parse_framing("open", 4, &f), 0);
	assert_int_equal(f, IPC_FRAMING_OPEN);
	assert_int_equal(attr_parse_framing("write", 5, &f), 0);
	assert_int_equal(f, IPC_FRAMING_WRITE);
	assert_int_equal(attr_parse_framing("line\n", 5, &f), 0);
	assert_int_equal(f, IPC_FRAMING_LINE);
	f = 99;
	assert_int_equal(attr_parse_framing("", 0, &f), -EINVAL);
	assert_int_equal(attr_parse_framing("\n", 1, &f), -EINVAL);
	assert_int_equal(attr_parse_framing("ope", 3, &f), -EINVAL);
	assert_int_equal(attr_parse_framing("opens", 5, &f), -EINVAL);
	assert_int_equal(attr_parse_framing("OPEN", 4, &f), -EINVAL);
	assert_int_equal(attr_parse_framing(" open", 5, &f), -EINVAL);
	assert_int_equal(attr_parse_framing("open\n\n", 6, &f), -EINVAL);
	assert_int_equal(attr_parse_framing("line", 3, &f), -EINVAL);
	assert_int_equal(f, 99);
	assert_string_equal(attr_framing_name(IPC_FRAMING_OPEN), "open");
	assert_string_equal(attr_framing_name(IPC_FRAMING_WRITE), "write");
	assert_string_equal(attr_framing_name(IPC_FRAMING_LINE), "line");
}

/* --- get / list --- */

static void test_get(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t m = t_create(st, T_MBOX_DIR, "q"), f = t_create(st, T_FIFO_DIR, "f");
	struct ipc_handle *w, *r;
	char buf[64];
	struct ipc_limits l = t_limits();

	expect_attr(st, m, "kind", "mbox");
	expect_attr(st, f, "kind", "fifo");
	expect_attr(st, T_MBOX_DIR, "kind", "dir");
	expect_attr(st, m, "framing", "open");
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)l.mbox_messages);
	expect_attr(st, m, "max_messages", buf);
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)l.fifo_bytes);
	expect_attr(st, f, "max_bytes", buf);
	expect_attr(st, m, "messages", "0");

	/* statistics follow the traffic */
	t_set(st, m, "framing", "write");
	w = t_open(st, m, O_WRONLY);
	r = t_open(st, m, O_RDONLY);
	t_put(w, "hello");
	t_put(w, "xy");
	expect_attr(st, m, "messages", "2");
	expect_attr(st, m, "bytes", "7");
	expect_attr(st, m, "in_messages", "2");
	expect_attr(st, m, "in_bytes", "7");
	expect_attr(st, m, "readers", "1");
	expect_attr(st, m, "writers", "1");
	assert_int_equal(t_read(r, 100, 0, buf, sizeof(buf)), 0);
	expect_attr(st, m, "out_messages", "1");
	expect_attr(st, m, "out_bytes", "5");
	expect_attr(st, m, "messages", "1");
	expect_attr(st, m, "blocked_readers", "0");
	expect_attr(st, m, "blocked_writers", "0");
	ipc_release(w);
	ipc_release(r);
	expect_attr(st, m, "readers", "0");

	/* size 0: the length only */
	assert_int_equal(attr_get(st, m, P "framing", NULL, 0), 5);
	/* too small a buffer */
	assert_int_equal(attr_get(st, m, P "framing", buf, 4), -ERANGE);
	assert_int_equal(attr_get(st, m, P "framing", buf, 5), 5);
	/* unknown names, or names of another kind */
	assert_int_equal(attr_get(st, m, P "nope", buf, sizeof(buf)), -ENODATA);
	assert_int_equal(attr_get(st, m, "user.other", buf, sizeof(buf)), -ENODATA);
	assert_int_equal(attr_get(st, m, "user.ipcfs", buf, sizeof(buf)), -ENODATA);
	assert_int_equal(attr_get(st, f, P "framing", buf, sizeof(buf)), -ENODATA);
	assert_int_equal(attr_get(st, f, P "messages", buf, sizeof(buf)), -ENODATA);
	assert_int_equal(attr_get(st, T_MBOX_DIR, P "framing", buf, sizeof(buf)), -ENODATA);
	assert_int_equal(attr_get(st, 999999, P "kind", buf, sizeof(buf)), -ENOENT);
	/* a kind directory that is not served (if any) does not exist */
	for (int k = IPC_KIND_DIR + 1; k < IPC_KIND_COUNT; k++)
		if (!store_kind_enabled(k))
			assert_int_equal(attr_get(st, IPC_ROOT_ID + (uint64_t)k, P "kind", buf,
						  sizeof(buf)),
					 -ENOENT);
}

static void test_list(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t m = t_create(st, T_MBOX_DIR, "q"), f = t_create(st, T_FIFO_DIR, "f");
	char buf[1024], small[8];
	int len, n = 0;
	bool saw_framing = false, saw_kind = false;

	len = attr_list(st, m, NULL, 0);
	assert_true(len > 0);
	assert_int_equal(attr_list(st, m, buf, sizeof(buf)), len);
	for (int off = 0; off < len; off += (int)strlen(buf + off) + 1) {
		char v[64];
		assert_memory_equal(buf + off, P, strlen(P));
		/* every listed name can be read */
		assert_true(attr_get(st, m, buf + off, v, sizeof(v)) >= 0);
		saw_framing |= strcmp(buf + off, P "framing") == 0;
		saw_kind |= strcmp(buf + off, P "kind") == 0;
		n++;
	}
	assert_true(saw_framing && saw_kind);
	assert_true(n >= 10);
	assert_int_equal(buf[len - 1], '\0');
	assert_int_equal(attr_list(st, m, buf, (size_t)len - 1), -ERANGE);
	assert_int_equal(attr_list(st, m, small, sizeof(small)), -ERANGE);

	/* a FIFO has no framing */
	len = attr_list(st, f, buf, sizeof(buf));
	assert_true(len > 0);
	for (int off = 0; off < len; off += (int)strlen(buf + off) + 1)
		assert_string_not_equal(buf + off, P "framing");
	assert_int_equal(attr_list(st, 999999, buf, sizeof(buf)), -ENOENT);
}

/* --- set --- */

static void test_set(void **state)
{
	struct ipc_store *st = T_ST(state);
	struct ipc_cred owner = t_user(), root = t_cred(0, 0, 9);
	uint64_t m = t_create(st, T_MBOX_DIR, "q"), f = t_create(st, T_FIFO_DIR, "f");
	struct ipc_limits l = t_limits();
	char big[64];

	assert_int_equal(set_as(st, m, "max_messages", "7", &owner), 0);
	expect_attr(st, m, "max_messages", "7");
	assert_int_equal(set_as(st, m, "max_messages", "8\n", &owner), 0);
	expect_attr(st, m, "max_messages", "8");
	assert_int_equal(set_as(st, m, "max_bytes", "100", &root), 0);
	expect_attr(st, m, "max_bytes", "100");
	assert_int_equal(set_as(st, m, "framing", "line\n", &owner), 0);
	expect_attr(st, m, "framing", "line");
	assert_int_equal(set_as(st, f, "max_bytes", "4096", &owner), 0);
	expect_attr(st, f, "max_bytes", "4096");
	store_lock(st);
	assert_int_equal(store_node(st, m)->set.max_messages, 8);
	assert_int_equal(store_node(st, f)->set.max_bytes, 4096);
	store_unlock(st);

	/* bad values change nothing */
	assert_int_equal(set_as(st, m, "max_messages", "0", &owner), -EINVAL);
	assert_int_equal(set_as(st, m, "max_messages", "-1", &owner), -EINVAL);
	assert_int_equal(set_as(st, m, "max_messages", " 9", &owner), -EINVAL);
	assert_int_equal(set_as(st, m, "max_messages", "", &owner), -EINVAL);
	snprintf(big, sizeof(big), "%llu", (unsigned long long)l.max_obj_messages + 1);
	assert_int_equal(set_as(st, m, "max_messages", big, &owner), -EINVAL);
	expect_attr(st, m, "max_messages", "8");
	snprintf(big, sizeof(big), "%llu", (unsigned long long)l.max_obj_bytes + 1);
	assert_int_equal(set_as(st, m, "max_bytes", big, &owner), -EINVAL);
	assert_int_equal(set_as(st, m, "max_bytes", "0x10", &owner), -EINVAL);
	expect_attr(st, m, "max_bytes", "100");
	assert_int_equal(set_as(st, m, "framing", "record5", &owner), -EINVAL);
	assert_int_equal(set_as(st, m, "framing", "", &owner), -EINVAL);
	expect_attr(st, m, "framing", "line");

	/* XATTR_CREATE: they always exist; XATTR_REPLACE is fine */
	assert_int_equal(attr_set(st, m, P "max_messages", "3", 1, XATTR_CREATE, &owner), -EEXIST);
	assert_int_equal(attr_set(st, m, P "max_messages", "3", 1, XATTR_REPLACE, &owner), 0);
	expect_attr(st, m, "max_messages", "3");
	/* not ours */
	assert_int_equal(attr_set(st, m, "user.other", "1", 1, 0, &owner), -ENOTSUP);
	assert_int_equal(attr_set(st, m, P "nope", "1", 1, 0, &owner), -ENOTSUP);
	assert_int_equal(attr_set(st, f, P "framing", "write", 5, 0, &owner), -ENOTSUP);
	assert_int_equal(attr_set(st, 999999, P "max_bytes", "1", 1, 0, &owner), -ENOENT);
	/* removal */
	assert_int_equal(attr_remove(st, m, P "max_bytes"), -EPERM);
	assert_int_equal(attr_remove(st, m, "user.other"), -ENODATA);
	assert_int_equal(attr_remove(st, 999999, P "max_bytes"), -ENOENT);
	expect_attr(st, m, "max_bytes", "100");
}

static void test_set_eperm(void **state)
{
	struct ipc_store *st = T_ST(state);
	struct ipc_cred owner = t_user(), other = t_cred(2000, 2000, 5);
	uint64_t m = t_create(st, T_MBOX_DIR, "q");

	/* a non-owner cannot change a setting, even to a good value */
	assert_int_equal(set_as(st, m, "max_messages", "5", &other), -EPERM);
	assert_int_equal(set_as(st, m, "framing", "write", &other), -EPERM);
	expect_attr(st, m, "framing", "open");
	/* statistics are read-only, for the owner too */
	assert_int_equal(set_as(st, m, "messages", "5", &owner), -EPERM);
	assert_int_equal(set_as(st, m, "kind", "fifo", &owner), -EPERM);
	assert_int_equal(set_as(st, m, "in_bytes", "0", &owner), -EPERM);
	assert_int_equal(set_as(st, T_MBOX_DIR, "kind", "fifo", &owner), -EPERM);
	expect_attr(st, m, "messages", "0");
	expect_attr(st, m, "kind", "mbox");
}

static void test_set_framing_ebusy(void **state)
{
	struct ipc_store *st = T_ST(state);
	struct ipc_cred owner = t_user();
	uint64_t m = t_create(st, T_MBOX_DIR, "q");
	struct ipc_handle *w, *r;
	char buf[64];

	/* a message is queued */
	w = t_open(st, m, O_WRONLY);
	t_put(w, "x");
	ipc_release(w);
	assert_int_equal(set_as(st, m, "framing", "write", &owner), -EBUSY);
	expect_attr(st, m, "framing", "open");
	/* the same framing is no change */
	assert_int_equal(set_as(st, m, "framing", "open", &owner), 0);
	/* limits may change at any time */
	assert_int_equal(set_as(st, m, "max_messages", "3", &owner), 0);
	r = t_open(st, m, O_RDONLY);
	assert_int_equal(t_read(r, 100, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "x");
	ipc_release(r);
	assert_int_equal(t_count(st, m), 0);

	/* a writer's message is being built */
	w = t_open(st, m, O_WRONLY);
	t_put(w, "partial");
	assert_int_equal(set_as(st, m, "framing", "write", &owner), -EBUSY);
	ipc_release(w);
	r = t_open(st, m, O_RDONLY);
	assert_int_equal(t_read(r, 100, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "partial");
	ipc_release(r);
	/* emptied: now it may change */
	assert_int_equal(set_as(st, m, "framing", "write", &owner), 0);
	expect_attr(st, m, "framing", "write");
}

static void test_set_framing_ebusy_partly_read(void **state)
{
	struct ipc_store *st = T_ST(state);
	struct ipc_cred owner = t_user();
	uint64_t m = t_create(st, T_MBOX_DIR, "q");
	struct ipc_handle *w, *r;
	char buf[64];

	w = t_open(st, m, O_WRONLY);
	t_put(w, "hello");
	ipc_release(w);
	r = t_open(st, m, O_RDONLY);
	assert_int_equal(t_read(r, 2, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "he");
	/* nothing is queued, but a reader holds the rest of a message */
	assert_int_equal(t_count(st, m), 0);
	assert_int_equal(set_as(st, m, "framing", "line", &owner), -EBUSY);
	ipc_release(r);
	assert_int_equal(set_as(st, m, "framing", "line", &owner), -EBUSY);
	expect_attr(st, m, "framing", "open");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_u64_accepts),
		cmocka_unit_test(test_parse_u64_rejects),
		cmocka_unit_test(test_parse_u64_many_leading_zeros),
		cmocka_unit_test(test_parse_framing),
		T_UNIT(test_get),
		T_UNIT(test_list),
		T_UNIT(test_set),
		T_UNIT(test_set_eperm),
		T_UNIT(test_set_framing_ebusy),
		T_UNIT(test_set_framing_ebusy_partly_read),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
