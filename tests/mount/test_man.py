"""test_man.py - the manual pages render with man(1) at 80 columns, without troff
warnings, with the sections they must have; meson installs them and the unit."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import BIN, ROOT, SLOW

MAN = os.path.join(ROOT, "man")
PAGES = {
    "ipcfs.1": ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "STARTING AND STOPPING", "FILES",
                "ENVIRONMENT", "EXIT STATUS", "EXAMPLES", "SEE ALSO"),
    "ipcctl.1": ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "EXIT STATUS", "EXAMPLES",
                 "SEE ALSO"),
    "ipcfs.7": ("NAME", "DESCRIPTION", "OBJECTS", "FRAMINGS", "SETTINGS AND STATISTICS",
                "STATUS FILES", "ERRORS", "LIMITS", "DURABILITY", "SECURITY", "SEE ALSO"),
}
# Words each page must explain (what the page is for).
MUST = {
    "ipcfs.1": ("--db", "--memory", "--sync", "--max-memory", "--max-objects", "--threads",
                "allow_other", "fuse.ipcfs", "/etc/fstab", "ipcfs.service", "Type=forking",
                "fusermount3 -u", "/.ipcfs/metrics", "/var/lib/ipcfs/ipcfs.db"),
    "ipcctl.1": ("ipcctl create", "ipcctl ls", "ipcctl stat", "ipcctl set", "ipcctl send",
                 "ipcctl recv", "ipcctl wait", "ipcctl drain", "ipcctl top", "--json",
                 "--timeout", "--count", "--once", "--interval", "--framing", "--max-messages",
                 "--max-bytes", "--size", "--value", "--retain", "--overflow", "--undo",
                 "--latched", "--mode"),
    "ipcfs.7": ("mbox/", "fifo/", "shm/", "sem/", "event/", "topic/", "open", "write", "line",
                "record", "max_messages", "max_bytes", "undo", "latched", "retain", "overflow",
                "subscribers", "dropped", "in_messages", "blocked_writers", "EAGAIN", "EINTR",
                "EINVAL", "EFBIG", "ENOSPC", "EXDEV", "EMSGSIZE", "EBUSY", "default_permissions",
                "allow_other", "owner or root", "--sync full"),
}


def need(tool):
    """A tool the test needs: missing fails in CI, skips elsewhere."""
    path = shutil.which(tool)
    if path:
        return path
    if os.environ.get("CI") == "true":
        raise AssertionError("%s is missing (CI installs man-db and groff-base)" % tool)
    raise unittest.SkipTest(tool + " is not installed")


class TestManPages(unittest.TestCase):
    def render(self, page):
        env = dict(os.environ, MANWIDTH="80", LANG="C.UTF-8", LC_ALL="C.UTF-8", MANPAGER="cat",
                   PAGER="cat")
        env.pop("MAN_KEEP_FORMATTING", None)
        r = subprocess.run([need("man"), "-l", os.path.join(MAN, page)], capture_output=True,
                           text=True, env=env, timeout=60 * SLOW)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "", "%s: warnings from man/troff:\n%s" % (page, r.stderr))
        return r.stdout

    def test_render(self):
        for page, sections in PAGES.items():
            text = self.render(page)
            name, sec = page.rsplit(".", 1)
            lines = text.splitlines()
            self.assertRegex(lines[0], r"^%s\(%s\)\s.*\s%s\(%s\)$" % (name.upper(), sec,
                                                                     name.upper(), sec))
            headings = [l for l in lines if re.match(r"^[A-Z][A-Z ]+$", l)]
            self.assertEqual([h for h in headings if h in sections], list(sections), page)
            for l in lines:
                self.assertLessEqual(len(l), 80, "%s: line over 80 columns: %r" % (page, l))
                self.assertNotIn("\b", l)
            flat = re.sub(r"\s+", " ", text)
            for word in MUST[page]:
                self.assertIn(word, flat, "%s does not mention %s" % (page, word))

    def test_troff_lint(self):
        groff = need("groff")
        for page in PAGES:
            r = subprocess.run([groff, "-man", "-ww", "-z", os.path.join(MAN, page)],
                               capture_output=True, text=True, timeout=60 * SLOW)
            self.assertEqual((r.returncode, r.stderr), (0, ""), page)

    def test_whatis_line(self):
        # The NAME line as apropos/whatis will index it.
        lexgrog = need("lexgrog")
        for page in PAGES:
            r = subprocess.run([lexgrog, os.path.join(MAN, page)], capture_output=True, text=True,
                               timeout=60 * SLOW)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, r': "%s - \S' % page.rsplit(".", 1)[0])

    def test_meson_install(self):
        # Install the build into a scratch root: the pages, ipcctl, the unit.
        builddir = os.path.dirname(BIN)
        if not os.path.exists(os.path.join(builddir, "build.ninja")):
            self.fail("no build directory next to " + BIN)
        dest = tempfile.mkdtemp(prefix="ipcfs-test-install-")
        self.addCleanup(shutil.rmtree, dest, ignore_errors=True)
        r = subprocess.run(["meson", "install", "-C", builddir, "--no-rebuild", "--quiet",
                            "--destdir", dest], capture_output=True, text=True, timeout=120 * SLOW)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        found = {}
        for d, _, files in os.walk(dest):
            for f in files:
                found.setdefault(f, os.path.join(d, f))
        for f in ("ipcfs", "ipcctl", "ipcfs.service"):
            self.assertIn(f, found)
        for page in PAGES:
            sec = page.rsplit(".", 1)[1]
            hits = [p for p in found.values()
                    if re.search(r"/man/man%s/%s(\.gz)?$" % (sec, re.escape(page)), p)]
            self.assertTrue(hits, "%s not installed: %s" % (page, sorted(found)))
        self.assertRegex(found["ipcfs.service"], r"/systemd/system/ipcfs\.service$")
        self.assertTrue(os.access(found["ipcctl"], os.X_OK))
        self.assertNotIn("shm_event", found)  # examples are not installed
