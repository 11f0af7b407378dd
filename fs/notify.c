/* notify.c - the notifier thread: poll wake-ups sent outside request handlers. */
#include <signal.h>
#include <stdlib.h>

#include "fs/fs.h"

void fs_poll_wake(void *ctx, void *handle_user)
{
	struct fs *fs = ctx;
	struct fs_open *fo = handle_user;
	struct fs_notify_item *it;

	/* st->lock is held: only move the handle to the queue. The handle is
	 * one-shot; the kernel sends a new one with its next POLL. */
	pthread_mutex_lock(&fs->notify_lock);
	if (fo->ph && !fs->notify_stop) {
		it = malloc(sizeof(*it));
		if (it) {
			it->ph = fo->ph;
			it->next = NULL;
			fo->ph = NULL;
			*fs->nq_tail = it;
			fs->nq_tail = &it->next;
			pthread_cond_signal(&fs->notify_cv);
		}
		/* Without memory the handle stays armed for the next change. */
	}
	pthread_mutex_unlock(&fs->notify_lock);
}

void fs_handle_gone(void *ctx, void *handle_user)
{
	struct fs_open *fo = handle_user;

	(void)ctx;
	if (fo->ph)
		fuse_pollhandle_destroy(fo->ph);
	free(fo);
}

static void *notifier(void *arg)
{
	struct fs *fs = arg;
	struct fs_notify_item *list, *next;

	pthread_mutex_lock(&fs->notify_lock);
	for (;;) {
		while (!fs->nq_head && !fs->notify_stop)
			pthread_cond_wait(&fs->notify_cv, &fs->notify_lock);
		list = fs->nq_head;
		fs->nq_head = NULL;
		fs->nq_tail = &fs->nq_head;
		if (!list && fs->notify_stop)
			break;
		pthread_mutex_unlock(&fs->notify_lock);
		for (; list; list = next) {
			next = list->next;
			if (!fs->notify_stop)
				fuse_lowlevel_notify_poll(list->ph);
			fuse_pollhandle_destroy(list->ph);
			free(list);
		}
		pthread_mutex_lock(&fs->notify_lock);
	}
	pthread_mutex_unlock(&fs->notify_lock);
	return NULL;
}

int fs_notify_start(struct fs *fs)
{
	sigset_t all, old;
	int r;

	fs->nq_head = NULL;
	fs->nq_tail = &fs->nq_head;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = pthread_create(&fs->notify_thread, NULL, notifier, fs);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r)
		return -r;
	fs->notify_running = true;
	return 0;
}

void fs_notify_stop(struct fs *fs)
{
	if (!fs->notify_running)
		return;
	pthread_mutex_lock(&fs->notify_lock);
	fs->notify_stop = true;
	pthread_cond_signal(&fs->notify_cv);
	pthread_mutex_unlock(&fs->notify_lock);
	pthread_join(fs->notify_thread, NULL);
	fs->notify_running = false;
}
