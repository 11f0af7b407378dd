/* test-store.c - unit tests of lib/store.c: the namespace, ids, limits and attributes. */
#include "tests/unit/util.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

static uint64_t mkdir_ok(struct ipc_store *st, uint64_t parent, const char *name,
			 uint32_t mode, const struct ipc_cred *c)
{
	struct stat sb;

	assert_int_equal(store_mkdir(st, parent, name, mode, c, &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));
	return sb.st_ino;
}

static uint64_t lookup_ino(struct ipc_store *st, uint64_t parent, const char *name)
{
	struct stat sb;

	assert_int_equal(store_lookup(st, parent, name, &sb), 0);
	return sb.st_ino;
}

static int lookup_err(struct ipc_store *st, uint64_t parent, const char *name)
{
	struct stat sb;

	return store_lookup(st, parent, name, &sb);
}

/* --- readdir collection --- */

struct dirlist {
	int n, max;
	char names[16][64];
	uint64_t cookies[16];
};

static int fill(void *ctx, const char *name, const struct stat *attr, uint64_t cookie)
{
	struct dirlist *dl = ctx;

	if (dl->n == dl->max)
		return 1; /* full: this entry is not taken */
	assert_int_equal(attr->st_ino, cookie);
	snprintf(dl->names[dl->n], sizeof(dl->names[0]), "%s", name);
	dl->cookies[dl->n] = cookie;
	dl->n++;
	return 0;
}

static struct dirlist list_dir(struct ipc_store *st, uint64_t id, uint64_t after, int max)
{
	struct dirlist dl = { .n = 0, .max = max };

	assert_int_equal(store_readdir(st, id, after, fill, &dl), 0);
	return dl;
}

/* --- tests --- */

static void test_fixed_nodes(void **state)
{
	struct ipc_store *st = T_ST(state);
	struct dirlist dl;
	struct stat sb;

	(void)state;
	assert_int_equal(store_getattr(st, T_ROOT, &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));
	assert_int_equal(sb.st_mode & 07777, 0755);
	assert_int_equal(store_lookup(st, T_ROOT, "mbox", &sb), 0);
	assert_int_equal(sb.st_ino, T_MBOX_DIR);
	assert_int_equal(sb.st_mode, S_IFDIR | 01777);
	assert_int_equal(lookup_ino(st, T_ROOT, "fifo"), T_FIFO_DIR);
	assert_int_equal(lookup_err(st, T_ROOT, "nope"), -ENOENT);
	/* each served kind has its directory; kinds not served are hidden */
	for (int k = IPC_KIND_DIR + 1; k < IPC_KIND_COUNT; k++) {
		const char *name = store_kind_name(k);
		assert_int_equal(store_kind_by_name(name), k);
		if (store_kind_enabled(k))
			assert_int_equal(lookup_ino(st, T_ROOT, name), IPC_ROOT_ID + (uint64_t)k);
		else
			assert_int_equal(lookup_err(st, T_ROOT, name), -ENOENT);
	}
	/* the root lists the served kinds, in kind order, and nothing else */
	dl = list_dir(st, T_ROOT, 0, 16);
	assert_true(dl.n >= 2);
	assert_string_equal(dl.names[0], "mbox");
	assert_string_equal(dl.names[1], "fifo");
	{
		int i = 0;
		for (int k = IPC_KIND_DIR + 1; k < IPC_KIND_COUNT; k++) {
			if (!store_kind_enabled(k))
				continue;
			assert_true(i < dl.n);
			assert_string_equal(dl.names[i], store_kind_name(k));
			assert_int_equal(dl.cookies[i], IPC_ROOT_ID + (uint64_t)k);
			i++;
		}
		assert_int_equal(i, dl.n);
	}
	assert_true(store_kind_enabled(IPC_KIND_MBOX));
	assert_false(store_kind_enabled(IPC_KIND_DIR));
	assert_int_equal(store_kind_by_name("fifo"), IPC_KIND_FIFO);
	assert_int_equal(store_kind_by_name("nope"), -1);
	assert_true(store_kind_is_stream(IPC_KIND_MBOX));
}

static void test_create_lookup(void **state)
{
	struct ipc_store *st = T_ST(state);
	struct ipc_cred c = t_cred(1234, 567, 1);
	struct stat sb, sb2;
	uint64_t a, b;

	(void)state;
	assert_int_equal(store_create(st, T_MBOX_DIR, "a", 0640, &c, &sb), 0);
	a = sb.st_ino;
	assert_true(a >= IPC_FIRST_USER_ID);
	assert_int_equal(sb.st_mode, S_IFREG | 0640);
	assert_int_equal(sb.st_uid, 1234);
	assert_int_equal(sb.st_gid, 567);
	assert_int_equal(sb.st_nlink, 1);
	assert_int_equal(sb.st_size, 0);
	assert_int_equal(store_lookup(st, T_MBOX_DIR, "a", &sb2), 0);
	assert_int_equal(sb2.st_ino, a);
	assert_int_equal(store_create(st, T_MBOX_DIR, "a", 0640, &c, &sb), -EEXIST);
	assert_int_equal(store_create(st, T_MBOX_DIR, "b", 0640, &c, &sb), 0);
	b = sb.st_ino;
	assert_true(b > a);
	assert_int_equal(lookup_err(st, T_MBOX_DIR, "c"), -ENOENT);
	assert_int_equal(lookup_err(st, a, "x"), -ENOTDIR);
	assert_int_equal(store_create(st, a, "x", 0640, &c, &sb), -ENOTDIR);
	assert_int_equal(lookup_err(st, 999999, "x"), -ENOENT);
	assert_int_equal(store_getattr(st, 999999, &sb), -ENOENT);
	/* the same name in another kind is another object */
	assert_int_equal(store_create(st, T_FIFO_DIR, "a", 0600, &c, &sb), 0);
	assert_int_not_equal(sb.st_ino, a);
}

static void test_mkdir_rmdir(void **state)
{
	struct ipc_store *st = T_ST(state);
	struct ipc_cred c = t_user();
	struct stat sb;
	uint64_t d, x;

	(void)state;
	/* an empty directory goes at once */
	mkdir_ok(st, T_MBOX_DIR, "e", 0755, &c);
	assert_int_equal(store_rmdir(st, T_MBOX_DIR, "e"), 0);
	assert_int_equal(lookup_err(st, T_MBOX_DIR, "e"), -ENOENT);
	d = mkdir_ok(st, T_MBOX_DIR, "d", 0755, &c);
	assert_int_equal(store_mkdir(st, T_MBOX_DIR, "d", 0755, &c, &sb), -EEXIST);
	x = t_create(st, d, "x");
	assert_int_equal(lookup_ino(st, d, "x"), x);
	assert_int_equal(store_getattr(st, d, &sb), 0);
	assert_int_equal(sb.st_size, 1);
	assert_int_equal(store_rmdir(st, T_MBOX_DIR, "d"), -ENOTEMPTY);
	assert_int_equal(store_rmdir(st, d, "x"), -ENOTDIR);
	assert_int_equal(store_unlink(st, T_MBOX_DIR, "d"), -EISDIR);
	assert_int_equal(store_unlink(st, d, "x"), 0);
	assert_int_equal(store_rmdir(st, T_MBOX_DIR, "d"), 0);
	assert_int_equal(lookup_err(st, T_MBOX_DIR, "d"), -ENOENT);
	assert_int_equal(store_rmdir(st, T_MBOX_DIR, "d"), -ENOENT);
	/* fixed directories stay */
	assert_int_equal(store_rmdir(st, T_ROOT, "mbox"), -EBUSY);
	assert_int_equal(store_unlink(st, T_ROOT, "mbox"), -EPERM);
	assert_int_equal(lookup_ino(st, T_ROOT, "mbox"), T_MBOX_DIR);
}

static void test_unlink(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t a;
	struct ipc_statfs sf;

	(void)state;
	a = t_create(st, T_MBOX_DIR, "a");
	t_create(st, T_MBOX_DIR, "b");
	store_statfs(st, &sf);
	assert_int_equal(sf.nodes, 2);
	assert_int_equal(store_unlink(st, T_MBOX_DIR, "a"), 0);
	assert_int_equal(lookup_err(st, T_MBOX_DIR, "a"), -ENOENT);
	assert_int_equal(store_unlink(st, T_MBOX_DIR, "a"), -ENOENT);
	assert_int_equal(lookup_err(st, T_MBOX_DIR, "b"), 0);
	store_statfs(st, &sf);
	assert_int_equal(sf.nodes, 1);
	/* the name is free again, for a new object with a new id */
	assert_true(t_create(st, T_MBOX_DIR, "a") > a);
}

static void test_rename_within_kind(void **state)
{
	struct ipc_store *st = T_ST(state);
	struct ipc_cred c = t_user();
	uint64_t a, b, sub;
	struct stat sb;

	(void)state;
	a = t_create(st, T_MBOX_DIR, "a");
	sub = mkdir_ok(st, T_MBOX_DIR, "sub", 0755, &c);
	assert_int_equal(store_rename(st, T_MBOX_DIR, "a", sub, "b", 0), 0);
	assert_int_equal(lookup_err(st, T_MBOX_DIR, "a"), -ENOENT);
	assert_int_equal(lookup_ino(st, sub, "b"), a);
	assert_int_equal(store_getattr(st, sub, &sb), 0);
	assert_int_equal(sb.st_size, 1);

	/* onto an existing object: it is replaced */
	b = t_create(st, T_MBOX_DIR, "c");
	assert_int_equal(store_rename(st, sub, "b", T_MBOX_DIR, "c", 0), 0);
	assert_int_equal(lookup_ino(st, T_MBOX_DIR, "c"), a);
	assert_int_equal(lookup_err(st, sub, "b"), -ENOENT);
	(void)b;

	/* RENAME_NOREPLACE refuses and changes nothing */
	b = t_create(st, T_MBOX_DIR, "d");
	assert_int_equal(store_rename(st, T_MBOX_DIR, "c", T_MBOX_DIR, "d", RENAME_NOREPLACE),
			 -EEXIST);
	assert_int_equal(lookup_ino(st, T_MBOX_DIR, "c"), a);
	assert_int_equal(lookup_ino(st, T_MBOX_DIR, "d"), b);
	/* ... and is fine when the target is free */
	assert_int_equal(store_rename(st, T_MBOX_DIR, "c", T_MBOX_DIR, "e", RENAME_NOREPLACE), 0);
	assert_int_equal(lookup_ino(st, T_MBOX_DIR, "e"), a);
	/* RENAME_EXCHANGE is not supported */
	assert_int_equal(store_rename(st, T_MBOX_DIR, "e", T_MBOX_DIR, "d", RENAME_EXCHANGE),
			 -EINVAL);
	/* onto itself: nothing happens */
	assert_int_equal(store_rename(st, T_MBOX_DIR, "e", T_MBOX_DIR, "e", 0), 0);
	assert_int_equal(lookup_ino(st, T_MBOX_DIR, "e"), a);
	/* object onto directory and back */
	assert_int_equal(store_rename(st, T_MBOX_DIR, "e", T_MBOX_DIR, "sub", 0), -EISDIR);
	assert_int_equal(store_rename(st, T_MBOX_DIR, "sub", T_MBOX_DIR, "e", 0), -ENOTDIR);
	assert_int_equal(store_rename(st, T_MBOX_DIR, "nope", T_MBOX_DIR, "x", 0), -ENOENT);
	/* a fixed directory cannot move; nothing moves into the root */
	assert_int_equal(store_rename(st, T_ROOT, "mbox", T_ROOT, "box", 0), -EPERM);
	assert_int_equal(store_rename(st, T_MBOX_DIR, "e", T_ROOT, "e", 0), -EPERM);
}

static void test_rename_across_kinds(void **state)
{
	struct ipc_store *st = T_ST(state);
	struct ipc_cred c = t_user();
	uint64_t a;

	(void)state;
	a = t_create(st, T_MBOX_DIR, "a");
	mkdir_ok(st, T_MBOX_DIR, "d", 0755, &c);
	assert_int_equal(store_rename(st, T_MBOX_DIR, "a", T_FIFO_DIR, "a", 0), -EXDEV);
	assert_int_equal(store_rename(st, T_MBOX_DIR, "d", T_FIFO_DIR, "d", 0), -EXDEV);
	assert_int_equal(lookup_ino(st, T_MBOX_DIR, "a"), a);
	assert_int_equal(lookup_err(st, T_FIFO_DIR, "a"), -ENOENT);
	assert_int_equal(lookup_err(st, T_FIFO_DIR, "d"), -ENOENT);
}

static void test_rename_into_own_subtree(void **state)
{
	struct ipc_store *st = T_ST(state);
	struct ipc_cred c = t_user();
	uint64_t p, ch, g;

	(void)state;
	p = mkdir_ok(st, T_MBOX_DIR, "p", 0755, &c);
	ch = mkdir_ok(st, p, "c", 0755, &c);
	g = mkdir_ok(st, ch, "g", 0755, &c);
	assert_int_equal(store_rename(st, T_MBOX_DIR, "p", p, "p", 0), -EINVAL);
	assert_int_equal(store_rename(st, T_MBOX_DIR, "p", g, "p", 0), -EINVAL);
	assert_int_equal(lookup_ino(st, T_MBOX_DIR, "p"), p);
	/* moving a child up is fine */
	assert_int_equal(store_rename(st, ch, "g", T_MBOX_DIR, "g", 0), 0);
	assert_int_equal(lookup_ino(st, T_MBOX_DIR, "g"), g);
	/* a non-empty directory cannot be replaced */
	assert_int_equal(store_rename(st, T_MBOX_DIR, "g", T_MBOX_DIR, "p", 0), -ENOTEMPTY);
}

static void test_name_length(void **state)
{
	struct ipc_store *st = T_ST(state);
	struct ipc_cred c = t_user();
	char n255[256], n256[257];
	struct stat sb;
	uint64_t id;

	(void)state;
	memset(n255, 'x', 255);
	n255[255] = '\0';
	memset(n256, 'y', 256);
	n256[256] = '\0';
	assert_int_equal(store_create(st, T_MBOX_DIR, n255, 0644, &c, &sb), 0);
	id = sb.st_ino;
	assert_int_equal(lookup_ino(st, T_MBOX_DIR, n255), id);
	assert_int_equal(store_create(st, T_MBOX_DIR, n256, 0644, &c, &sb), -ENAMETOOLONG);
	assert_int_equal(store_mkdir(st, T_MBOX_DIR, n256, 0755, &c, &sb), -ENAMETOOLONG);
	assert_int_equal(lookup_err(st, T_MBOX_DIR, n256), -ENAMETOOLONG);
	assert_int_equal(store_rename(st, T_MBOX_DIR, n255, T_MBOX_DIR, n256, 0), -ENAMETOOLONG);
	assert_int_equal(lookup_ino(st, T_MBOX_DIR, n255), id);
	n255[0] = 'z';
	assert_int_equal(store_mkdir(st, T_MBOX_DIR, n255, 0755, &c, &sb), 0);
	assert_int_equal(store_create(st, T_MBOX_DIR, "", 0644, &c, &sb), -ENOENT);
}

static void test_create_in_root_refused(void **state)
{
	struct ipc_store *st = T_ST(state);
	struct ipc_cred c = t_cred(0, 0, 1);
	struct dirlist dl;
	struct stat sb;

	(void)state;
	assert_int_equal(store_create(st, T_ROOT, "x", 0644, &c, &sb), -EPERM);
	assert_int_equal(store_mkdir(st, T_ROOT, "x", 0755, &c, &sb), -EPERM);
	assert_int_equal(store_create(st, T_ROOT, "mbox", 0644, &c, &sb), -EEXIST);
	/* nor in a kind that is not served (if any) */
	for (int k = IPC_KIND_DIR + 1; k < IPC_KIND_COUNT; k++)
		if (!store_kind_enabled(k))
			assert_int_equal(store_create(st, IPC_ROOT_ID + (uint64_t)k, "x", 0644, &c,
						      &sb),
					 -ENOENT);
	dl = list_dir(st, T_ROOT, 0, 16);
	for (int i = 0; i < dl.n; i++)
		assert_string_not_equal(dl.names[i], "x");
}

static void test_umask(void **state)
{
	struct ipc_store *st = T_ST(state);
	struct ipc_cred c = t_user();
	struct stat sb;

	(void)state;
	c.umask = 022;
	assert_int_equal(store_create(st, T_MBOX_DIR, "f", 0666, &c, &sb), 0);
	assert_int_equal(sb.st_mode, S_IFREG | 0644);
	assert_int_equal(store_mkdir(st, T_MBOX_DIR, "d", 0777, &c, &sb), 0);
	assert_int_equal(sb.st_mode, S_IFDIR | 0755);
	c.umask = 077;
	assert_int_equal(store_create(st, T_FIFO_DIR, "g", 0666, &c, &sb), 0);
	assert_int_equal(sb.st_mode, S_IFREG | 0600);
	/* a file type in mode is ignored */
	c.umask = 0;
	assert_int_equal(store_create(st, T_FIFO_DIR, "h", S_IFDIR | 0640, &c, &sb), 0);
	assert_int_equal(sb.st_mode, S_IFREG | 0640);
}

static void test_setgid_inheritance(void **state)
{
	struct ipc_store *st = T_ST(state);
	struct ipc_cred owner = t_cred(1000, 1000, 1), other = t_cred(2000, 3000, 2);
	struct stat attr, sb;
	uint64_t g;

	(void)state;
	g = mkdir_ok(st, T_MBOX_DIR, "g", 0777, &owner);
	memset(&attr, 0, sizeof(attr));
	attr.st_mode = 02777;
	assert_int_equal(store_setattr(st, g, &attr, IPC_SET_MODE, &owner, &sb), 0);
	assert_int_equal(sb.st_mode, S_IFDIR | 02777);

	assert_int_equal(store_create(st, g, "obj", 0644, &other, &sb), 0);
	assert_int_equal(sb.st_uid, 2000);
	assert_int_equal(sb.st_gid, 1000);
	assert_int_equal(sb.st_mode & S_ISGID, 0);
	assert_int_equal(store_mkdir(st, g, "sub", 0755, &other, &sb), 0);
	assert_int_equal(sb.st_gid, 1000);
	assert_int_equal(sb.st_mode, S_IFDIR | S_ISGID | 0755);
	/* without the bit, the creator's group */
	assert_int_equal(store_create(st, T_MBOX_DIR, "plain", 0644, &other, &sb), 0);
	assert_int_equal(sb.st_gid, 3000);
}

static void test_max_nodes(void **state)
{
	struct ipc_limits l = t_limits();
	struct ipc_store *st;
	struct ipc_cred c = t_user();
	struct ipc_statfs sf;
	struct stat sb;

	(void)state;
	l.max_nodes = 3;
	st = t_fix_store(*state, &l, IPC_SYNC_MEMORY, NULL);
	t_create(st, T_MBOX_DIR, "a");
	mkdir_ok(st, T_MBOX_DIR, "d", 0755, &c);
	t_create(st, T_FIFO_DIR, "b");
	assert_int_equal(store_create(st, T_MBOX_DIR, "c", 0644, &c, &sb), -ENOSPC);
	assert_int_equal(store_mkdir(st, T_FIFO_DIR, "e", 0755, &c, &sb), -ENOSPC);
	assert_int_equal(lookup_err(st, T_MBOX_DIR, "c"), -ENOENT);
	store_statfs(st, &sf);
	assert_int_equal(sf.nodes, 3);
	assert_int_equal(sf.max_nodes, 3);
	/* removing one frees a place */
	assert_int_equal(store_unlink(st, T_MBOX_DIR, "a"), 0);
	assert_int_equal(store_create(st, T_MBOX_DIR, "c", 0644, &c, &sb), 0);
}

static void test_many_nodes(void **state)
{
	struct ipc_store *st = T_ST(state);
	char name[32];
	uint64_t ids[3000];

	(void)state;
	/* enough to grow the hash tables several times */
	for (int i = 0; i < 3000; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		ids[i] = t_create(st, (i & 1) ? T_FIFO_DIR : T_MBOX_DIR, name);
	}
	for (int i = 0; i < 3000; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		assert_int_equal(lookup_ino(st, (i & 1) ? T_FIFO_DIR : T_MBOX_DIR, name), ids[i]);
	}
}

static void test_readdir_order_and_resume(void **state)
{
	struct ipc_store *st = T_ST(state);
	struct dirlist dl;
	uint64_t id[4];
	const char *names[4] = { "zz", "aa", "mm", "bb" };

	(void)state;
	for (int i = 0; i < 4; i++)
		id[i] = t_create(st, T_MBOX_DIR, names[i]);
	/* in creation (id) order, the cookie is the id */
	dl = list_dir(st, T_MBOX_DIR, 0, 16);
	assert_int_equal(dl.n, 4);
	for (int i = 0; i < 4; i++) {
		assert_string_equal(dl.names[i], names[i]);
		assert_int_equal(dl.cookies[i], id[i]);
	}
	/* a full buffer stops the listing; resume after the last cookie */
	dl = list_dir(st, T_MBOX_DIR, 0, 2);
	assert_int_equal(dl.n, 2);
	assert_string_equal(dl.names[1], "aa");
	dl = list_dir(st, T_MBOX_DIR, dl.cookies[1], 16);
	assert_int_equal(dl.n, 2);
	assert_string_equal(dl.names[0], "mm");
	assert_string_equal(dl.names[1], "bb");
	/* resuming after an entry removed meanwhile */
	assert_int_equal(store_unlink(st, T_MBOX_DIR, "aa"), 0);
	store_forget(st, id[1], 1);
	dl = list_dir(st, T_MBOX_DIR, id[1], 16);
	assert_int_equal(dl.n, 2);
	assert_string_equal(dl.names[0], "mm");
	/* after the last one: nothing */
	dl = list_dir(st, T_MBOX_DIR, id[3], 16);
	assert_int_equal(dl.n, 0);
	/* a renamed entry keeps its place (its cookie) */
	assert_int_equal(store_rename(st, T_MBOX_DIR, "zz", T_MBOX_DIR, "yy", 0), 0);
	dl = list_dir(st, T_MBOX_DIR, 0, 16);
	assert_int_equal(dl.n, 3);
	assert_string_equal(dl.names[0], "yy");
	assert_int_equal(dl.cookies[0], id[0]);
	{
		struct dirlist e = { .max = 16 };
		assert_int_equal(store_readdir(st, id[0], 0, fill, &e), -ENOTDIR);
		assert_int_equal(store_readdir(st, 999999, 0, fill, &e), -ENOENT);
	}
}

static void test_forget_frees_unlinked(void **state)
{
	struct ipc_store *st = T_ST(state);
	struct stat sb;
	uint64_t a;

	(void)state;
	a = t_create(st, T_MBOX_DIR, "a"); /* one lookup */
	lookup_ino(st, T_MBOX_DIR, "a");    /* two */
	assert_int_equal(store_unlink(st, T_MBOX_DIR, "a"), 0);
	/* the kernel still refers to it */
	assert_int_equal(store_getattr(st, a, &sb), 0);
	assert_int_equal(sb.st_nlink, 0);
	store_forget(st, a, 1);
	assert_int_equal(store_getattr(st, a, &sb), 0);
	store_forget(st, a, 1);
	assert_int_equal(store_getattr(st, a, &sb), -ENOENT);
	store_lock(st);
	assert_null(store_node(st, a));
	store_unlock(st);

	/* a linked node is not freed by forget */
	a = t_create(st, T_MBOX_DIR, "b");
	store_forget(st, a, 5);
	assert_int_equal(store_getattr(st, a, &sb), 0);
	/* fixed nodes are never forgotten */
	store_forget(st, T_MBOX_DIR, 100);
	assert_int_equal(store_getattr(st, T_MBOX_DIR, &sb), 0);
}

static void test_unlinked_open_lives_until_release(void **state)
{
	struct ipc_store *st = T_ST(state);
	struct ipc_handle *h;
	struct stat sb;
	uint64_t a;

	(void)state;
	a = t_create(st, T_MBOX_DIR, "a");
	h = t_open(st, a, O_RDWR);
	assert_int_equal(store_unlink(st, T_MBOX_DIR, "a"), 0);
	store_forget(st, a, 1);
	assert_int_equal(store_getattr(st, a, &sb), 0);
	ipc_release(h);
	assert_int_equal(store_getattr(st, a, &sb), -ENOENT);
}

static void test_setattr(void **state)
{
	struct ipc_store *st = T_ST(state);
	struct ipc_cred owner = t_cred(1000, 1000, 1), other = t_cred(2000, 2000, 2);
	struct ipc_cred root = t_cred(0, 0, 3);
	struct stat attr, sb;
	uint64_t a, d;

	(void)state;
	assert_int_equal(store_create(st, T_MBOX_DIR, "a", 0644, &owner, &sb), 0);
	a = sb.st_ino;
	memset(&attr, 0, sizeof(attr));

	attr.st_mode = 0600;
	assert_int_equal(store_setattr(st, a, &attr, IPC_SET_MODE, &other, &sb), -EPERM);
	assert_int_equal(store_getattr(st, a, &sb), 0);
	assert_int_equal(sb.st_mode, S_IFREG | 0644);
	assert_int_equal(store_setattr(st, a, &attr, IPC_SET_MODE, &owner, &sb), 0);
	assert_int_equal(sb.st_mode, S_IFREG | 0600);
	attr.st_mode = S_IFDIR | 0640; /* the type cannot change */
	assert_int_equal(store_setattr(st, a, &attr, IPC_SET_MODE, &root, &sb), 0);
	assert_int_equal(sb.st_mode, S_IFREG | 0640);

	/* chown: only root gives a file away */
	attr.st_uid = 2000;
	assert_int_equal(store_setattr(st, a, &attr, IPC_SET_UID, &owner, &sb), -EPERM);
	assert_int_equal(store_setattr(st, a, &attr, IPC_SET_UID, &root, &sb), 0);
	assert_int_equal(sb.st_uid, 2000);
	/* the fixed directories cannot be changed */
	attr.st_mode = 0777;
	assert_int_equal(store_setattr(st, T_MBOX_DIR, &attr, IPC_SET_MODE, &root, &sb), -EPERM);

	/* truncate: a stream accepts 0 (echo x > mbox/q) and nothing else */
	attr.st_size = 0;
	assert_int_equal(store_setattr(st, a, &attr, IPC_SET_SIZE, &other, &sb), 0);
	attr.st_size = 5;
	assert_int_equal(store_setattr(st, a, &attr, IPC_SET_SIZE, &root, &sb), -EINVAL);
	d = mkdir_ok(st, T_MBOX_DIR, "d", 0755, &owner);
	attr.st_size = 0;
	assert_int_equal(store_setattr(st, d, &attr, IPC_SET_SIZE, &owner, &sb), -EISDIR);

	/* times */
	attr.st_mtim.tv_sec = 1000000;
	attr.st_mtim.tv_nsec = 5;
	assert_int_equal(store_setattr(st, a, &attr, IPC_SET_MTIME, &root, &sb), 0);
	assert_int_equal(sb.st_mtim.tv_sec, 1000000);
	assert_int_equal(sb.st_mtim.tv_nsec, 5);
	assert_int_equal(store_setattr(st, 999999, &attr, IPC_SET_MTIME, &root, &sb), -ENOENT);
}

static void test_stat_size_is_queued_bytes(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t a = t_create(st, T_MBOX_DIR, "a");
	struct ipc_handle *h;
	struct stat sb;

	(void)state;
	h = t_open(st, a, O_WRONLY);
	t_put(h, "hello");
	ipc_release(h);
	assert_int_equal(store_getattr(st, a, &sb), 0);
	assert_int_equal(sb.st_size, 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T_UNIT(test_fixed_nodes),
		T_UNIT(test_create_lookup),
		T_UNIT(test_mkdir_rmdir),
		T_UNIT(test_unlink),
		T_UNIT(test_rename_within_kind),
		T_UNIT(test_rename_across_kinds),
		T_UNIT(test_rename_into_own_subtree),
		T_UNIT(test_name_length),
		T_UNIT(test_create_in_root_refused),
		T_UNIT(test_umask),
		T_UNIT(test_setgid_inheritance),
		T_UNIT(test_max_nodes),
		T_UNIT(test_many_nodes),
		T_UNIT(test_readdir_order_and_resume),
		T_UNIT(test_forget_frees_unlinked),
		T_UNIT(test_unlinked_open_lives_until_release),
		T_UNIT(test_setattr),
		T_UNIT(test_stat_size_is_queued_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
