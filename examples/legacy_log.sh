#!/usr/bin/env bash
# legacy_log.sh - a legacy program's log file pointed at a topic (line framing): two live subscribers get every line.
#
#   examples/legacy_log.sh MOUNTPOINT        (or IPCFS_MNT=MOUNTPOINT)
#
# The "legacy program" knows only how to append to a log file whose path it
# is given. Point that path at a topic in line framing and each line it logs
# becomes a message delivered to every subscriber: here a "monitor" that
# keeps the errors and an "archiver" that keeps everything. Subscribers are
# plain `while read` loops. The script checks both and exits 0.
set -u
mnt=${1:-${IPCFS_MNT:-}}
if [ -z "$mnt" ] || [ ! -d "$mnt/topic" ]; then
	echo "usage: $0 MOUNTPOINT (an ipcfs mount; or set IPCFS_MNT)" >&2
	exit 2
fi
lines=${LINES_TO_LOG:-40}
dir=$mnt/topic/legacy.$$
log=$dir/app.log
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$dir" "$work"
}
trap cleanup EXIT

# The legacy program: opens its log file in append mode, like any daemon.
legacy_program() ( # LOGFILE COUNT
	exec >>"$1"
	for i in $(seq "$2"); do
		if [ $((i % 10)) = 0 ]; then
			echo "ERROR request $i failed"
		else
			echo "INFO request $i ok"
		fi
	done
)

# A subscriber: reads the topic line by line (each read(2) returns one
# message) and stops after COUNT lines; FILTER chooses what it keeps.
subscriber() ( # COUNT FILTER OUTPUT
	n=0
	exec <"$log" >"$3"
	while [ "$n" -lt "$1" ] && IFS= read -r line; do
		n=$((n + 1))
		case $line in $2) printf '%s\n' "$line" ;; esac
	done
	[ "$n" = "$1" ]
)

mkdir "$dir" && touch "$log" || exit 1
setfattr -n user.ipcfs.framing -v line "$log" || exit 1

# Each open for reading is a subscription from the next line on.
subscriber "$lines" '*' "$work/archive" &      # the archiver keeps everything
pids+=($!)
subscriber "$lines" 'ERROR*' "$work/errors" &  # the monitor keeps the errors
pids+=($!)

# Wait until both have subscribed: the topic counts them.
for _ in $(seq 500); do
	[ "$(getfattr --absolute-names --only-values -n user.ipcfs.subscribers "$log")" = 2 ] && break
	sleep 0.01
done
[ "$(getfattr --absolute-names --only-values -n user.ipcfs.subscribers "$log")" = 2 ] ||
	{ echo "legacy_log: the subscribers did not subscribe" >&2; exit 1; }

legacy_program "$log" "$lines"

for p in "${pids[@]}"; do
	wait "$p" || { echo "legacy_log: a subscriber failed" >&2; exit 1; }
done
pids=()

legacy_program "$work/expected" "$lines"
if ! cmp -s "$work/expected" "$work/archive"; then
	echo "legacy_log: the archiver did not get every line in order" >&2
	diff "$work/expected" "$work/archive" | head >&2
	exit 1
fi
if ! grep '^ERROR' "$work/expected" | cmp -s - "$work/errors"; then
	echo "legacy_log: the monitor did not get every error" >&2
	exit 1
fi
echo "legacy_log: $lines log lines reached both subscribers ($(wc -l < "$work/errors") errors for the monitor)"
