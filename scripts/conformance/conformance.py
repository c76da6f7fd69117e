#!/usr/bin/python3
"""Differential test of luamig's revision-graph semantics against real Alembic.

For each seed: a random revision graph (linear runs, branches, merges, branch
labels, depends_on), written twice, as an Alembic script directory (env.py and
one .py per revision) and as a luamig project (one .lua per revision); each
revision's upgrade()/downgrade() appends '+id' / '-id' to a run_log table. Then a
random sequence of commands (upgrade, downgrade, stamp, current, heads) runs on
two fresh databases, one through Alembic (in this process, its command API) and
one through the luamig command. After each command it compares: error or not,
the version-table rows, which revisions' upgrade/downgrade ran and in what order,
and what `current` and `heads` print (ids, marks and branch labels).

Differences that luamig makes on purpose (README, "Where luamig differs from
Alembic") are recognised and counted by class; anything else is a disagreement.
After either, the luamig database is set to Alembic's rows so the run goes on.

    conformance.py --luamig build/luamig [--seeds N] [--first S] [--tap]
                   [--batch K] [--keep DIR] [-v]

Needs python3-alembic and python3-psycopg2 (Debian) and a server reachable
through libpq's PG* variables (scripts/conformance/run.sh starts one).
Exit status: 0 when there was no disagreement, 1 otherwise.
"""
import argparse
import contextlib
import io
import multiprocessing
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import warnings

sys.dont_write_bytecode = True

import psycopg2  # noqa: E402
from alembic import command as alembic_command  # noqa: E402
from alembic.config import Config  # noqa: E402
from alembic.script import base as alembic_base  # noqa: E402
import sqlalchemy  # noqa: E402

# Alembic orders revisions by os.listdir(), which is arbitrary; luamig sorts the
# file names. Sorting Alembic's listing too makes both orders the same.
_list_py_dir = alembic_base.Script._list_py_dir.__func__
alembic_base.Script._list_py_dir = classmethod(
    lambda cls, scriptdir, path: sorted(_list_py_dir(cls, scriptdir, path)))

HEX = "0123456789abcdef"
MARKS = {"head", "effective head", "branchpoint", "mergepoint", "current"}


# ---------------------------------------------------------------- the graph

class Graph:
    """Revisions in creation order: id, down (ids), deps (ids or labels), labels."""

    def __init__(self, revs):
        self.revs = revs
        self.by_id = {r["id"]: r for r in revs}
        self.label_rev = {lb: r["id"] for r in revs for lb in r["labels"]}

    def ref(self, name):
        return self.label_rev.get(name, name)

    def below(self, i, deps):
        r = self.by_id[i]
        return r["down"] + ([self.ref(d) for d in r["deps"]] if deps else [])

    def above(self, i, deps):
        return [r["id"] for r in self.revs if i in self.below(r["id"], deps)]

    @staticmethod
    def _reach(ids, step):
        seen, todo = set(), list(ids)
        while todo:
            i = todo.pop()
            if i not in seen:
                seen.add(i)
                todo.extend(step(i))
        return seen

    def ancestors(self, ids, deps=True):
        """ids and everything below them (down_revision, and depends_on when deps)."""
        return self._reach(ids, lambda i: self.below(i, deps))

    def descendants(self, ids, deps=True):
        return self._reach(ids, lambda i: self.above(i, deps))


def gen_graph(rng):
    """A random graph of 4 to 16 revisions: runs of children, branches, merges of
    two or three heads, a second base now and then, up to four branch labels, and
    depends_on naming one earlier revision, by id or by label (at most one:
    Alembic keeps several in a Python set, which orders them as it pleases)."""
    n = rng.randint(4, 16)
    revs, ids, heads, nlabels = [], set(), [], 0

    def new_id():
        while True:
            prefix = ""
            if revs and rng.random() < 0.3:   # shared prefixes: ambiguous abbreviations
                prefix = rng.choice(revs)["id"][:rng.randint(1, 3)]
            i = prefix + "".join(rng.choice(HEX) for _ in range(12 - len(prefix)))
            if i not in ids:
                ids.add(i)
                return i

    for _ in range(n):
        r = {"id": new_id(), "down": [], "deps": [], "labels": []}
        roll = rng.random()
        if not revs or roll < 0.08:
            pass                                               # a new base
        elif roll < 0.25 and len(heads) >= 2:
            r["down"] = rng.sample(heads, 3 if len(heads) > 2 and rng.random() < 0.2 else 2)
        elif roll < 0.45:
            r["down"] = [rng.choice(revs)["id"]]               # a branch
        else:
            r["down"] = [revs[-1]["id"] if rng.random() < 0.7 else rng.choice(heads)]
        if nlabels < 4 and rng.random() < 0.2:
            nlabels += 1
            r["labels"] = ["lab%d" % nlabels]
        heads = [h for h in heads if h not in r["down"]] + [r["id"]]
        revs.append(r)
        if len(revs) > 2 and rng.random() < 0.2:
            d = rng.choice(revs[:-1])
            by_label = d["labels"] and rng.random() < 0.4
            r["deps"] = [d["labels"][0] if by_label else d["id"]]
    return Graph(revs)


# ---------------------------------------------------------------- commands

def gen_commands(rng, g, count):
    """count random commands: (verb, target); targets drawn from every form."""
    ids = [r["id"] for r in g.revs]
    labels = sorted(g.label_rev)

    def rid():
        return rng.choice(ids)

    def prefix():
        i = rid()
        return i[:rng.randint(1, 5)]

    def n():
        return rng.choice([1, 1, 1, 2, 2, 3])

    def label():
        return rng.choice(labels)

    up = [lambda: "head", lambda: "heads", lambda: "base", rid, rid, rid, prefix,
          lambda: "+%d" % n(), lambda: "%s+%d" % (rid(), n())]
    down = [lambda: "base", rid, rid, rid, prefix, lambda: "-%d" % n(), lambda: "-%d" % n(),
            lambda: "%s-%d" % (rid(), n()), lambda: "head", lambda: "heads"]
    stamp = [rid, rid, rid, lambda: "heads", lambda: "base", lambda: "head", prefix]
    if labels:
        up += [lambda: label() + "@head", lambda: label() + "@head", lambda: label() + "@heads",
               lambda: label() + "@base", lambda: "%s@+%d" % (label(), n()),
               lambda: "%s@+%d" % (label(), n()), lambda: "%s@%s" % (label(), rid()),
               lambda: "%s@%s+%d" % (label(), rid(), n()), label]
        down += [lambda: label() + "@base", lambda: label() + "@base",
                 lambda: "%s@-%d" % (label(), n()), lambda: "%s@-%d" % (label(), n()),
                 lambda: "%s@%s" % (label(), rid()), lambda: "%s@%s" % (label(), rid()),
                 lambda: "%s@%s-%d" % (label(), rid(), n())]
        stamp += [lambda: label() + "@head", lambda: label() + "@heads", lambda: label() + "@base",
                  lambda: "%s@%s" % (label(), rid())]
    out = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.42:
            out.append(("upgrade", rng.choice(up)()))
        elif roll < 0.80:
            out.append(("downgrade", rng.choice(down)()))
        elif roll < 0.88:
            out.append(("stamp", rng.choice(stamp)()))
        elif roll < 0.97:
            out.append(("current", None))
        else:
            out.append(("heads", None))
    return out


# ---------------------------------------------------------------- the two projects

ENV_PY = '''\
from alembic import context
config = context.config
with config.attributes["engine"].connect() as connection:
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
'''


def py_value(v):
    if not v:
        return "None"
    return repr(v[0]) if len(v) == 1 else repr(tuple(v))


def lua_value(v):
    if not v:
        return "nil"
    if len(v) == 1:
        return '"%s"' % v[0]
    return "{ " + ", ".join('"%s"' % x for x in v) + " }"


def write_projects(g, root):
    adir, ldir = os.path.join(root, "alembic"), os.path.join(root, "luamig")
    os.makedirs(os.path.join(adir, "versions"))
    os.makedirs(os.path.join(ldir, "versions"))
    with open(os.path.join(adir, "env.py"), "w") as f:
        f.write(ENV_PY)
    with open(os.path.join(ldir, "luamig.lua"), "w") as f:
        f.write('return { versions = "versions" }\n')
    for r in g.revs:
        i = r["id"]
        with open(os.path.join(adir, "versions", i + ".py"), "w") as f:
            f.write('from alembic import op\nrevision = %r\ndown_revision = %s\n'
                    'branch_labels = %s\ndepends_on = %s\n\n'
                    'def upgrade():\n    op.execute("INSERT INTO run_log (rev) VALUES (\'+%s\')")\n\n'
                    'def downgrade():\n    op.execute("INSERT INTO run_log (rev) VALUES (\'-%s\')")\n'
                    % (i, py_value(r["down"]), py_value(r["labels"]), py_value(r["deps"]), i, i))
        with open(os.path.join(ldir, "versions", i + ".lua"), "w") as f:
            f.write('-- %s\nrevision = "%s"\ndown_revision = %s\nbranch_labels = %s\n'
                    'depends_on = %s\n'
                    'function upgrade() op.execute("INSERT INTO run_log (rev) VALUES (\'+%s\')") end\n'
                    'function downgrade() op.execute("INSERT INTO run_log (rev) VALUES (\'-%s\')") end\n'
                    % (i, i, lua_value(r["down"]), lua_value(r["labels"]), lua_value(r["deps"]), i, i))
    return adir, ldir


# ---------------------------------------------------------------- running a command

def normalise_listing(text):
    """current/heads output as a sorted list of lines, branch labels sorted."""
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        parts = re.findall(r"\(([^)]*)\)", line)
        head = line.split(" ", 1)[0]
        groups = []
        for p in parts:
            groups.append(p if p in MARKS else "(" + ", ".join(sorted(p.split(", "))) + ")")
        lines.append(" ".join([head] + groups))
    return sorted(lines)


class Side:
    """One database and how to run a command on it; run() returns (ok, output, message)."""

    def __init__(self, dbname, vtable):
        self.dbname = dbname
        self.vtable = vtable
        self.conn = psycopg2.connect(dbname=dbname)
        self.conn.autocommit = True

    def reset(self):
        """An empty database for the next seed (cheaper than CREATE DATABASE)."""
        with self.conn.cursor() as c:
            c.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public; "
                      "CREATE TABLE run_log (n serial PRIMARY KEY, rev text NOT NULL)")

    def rows(self):
        with self.conn.cursor() as c:
            c.execute("SELECT to_regclass(%s) IS NOT NULL", (self.vtable,))
            if not c.fetchone()[0]:
                return []
            c.execute("SELECT version_num FROM " + self.vtable)
            return sorted(r[0] for r in c.fetchall())

    def log_since(self, n):
        with self.conn.cursor() as c:
            c.execute("SELECT n, rev FROM run_log WHERE n > %s ORDER BY n", (n,))
            got = c.fetchall()
        return [r for _, r in got], (got[-1][0] if got else n)

    def set_rows(self, rows):
        with self.conn.cursor() as c:
            c.execute("CREATE TABLE IF NOT EXISTS %s (version_num varchar(32) NOT NULL, "
                      "CONSTRAINT %s_pkc PRIMARY KEY (version_num))" % (self.vtable, self.vtable))
            c.execute("DELETE FROM " + self.vtable)
            for r in rows:
                c.execute("INSERT INTO " + self.vtable + " VALUES (%s)", (r,))

    def close(self):
        self.conn.close()


class AlembicSide(Side):
    def __init__(self, dbname):
        super().__init__(dbname, "alembic_version")
        self.engine = sqlalchemy.create_engine("postgresql+psycopg2:///" + dbname, pool_size=1)
        self.script = None

    def use(self, script_dir):
        self.script = alembic_base.ScriptDirectory(script_dir)   # read once per seed
        self.reset()

    def run(self, verb, target):
        out = io.StringIO()
        cfg = Config(stdout=out)
        cfg.set_main_option("script_location", self.script.dir)
        cfg.attributes["engine"] = self.engine
        fn = getattr(alembic_command, verb)
        try:
            with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()), \
                    _cached_script(self.script):
                warnings.simplefilter("ignore")
                fn(cfg) if target is None else fn(cfg, target)
        except Exception as e:                     # noqa: BLE001 (any failure is an error exit)
            return False, out.getvalue(), "%s: %s" % (type(e).__name__, e)
        return True, out.getvalue(), ""

    def plan(self, target, rows):
        """What Alembic's upgrade would run from rows, without running it."""
        try:
            steps = self.script._upgrade_revs(target, tuple(rows))
        except Exception:                          # noqa: BLE001
            return None
        return ["+" + st.revision.revision for st in steps]

    def order(self, ids, heads):
        """Alembic's order for undoing the revisions ids from the rows heads."""
        rmap = self.script.revision_map
        return rmap._topological_sort([rmap.get_revision(i) for i in ids],
                                      [rmap.get_revision(h) for h in heads])

    def close(self):
        super().close()
        self.engine.dispose()


@contextlib.contextmanager
def _cached_script(script):
    """Alembic's commands read the script directory each time; the files do not change."""
    saved = alembic_command.ScriptDirectory
    alembic_command.ScriptDirectory = type("Cached", (), {"from_config": staticmethod(lambda cfg: script)})
    try:
        yield
    finally:
        alembic_command.ScriptDirectory = saved


class LuamigSide(Side):
    def __init__(self, dbname, binary):
        super().__init__(dbname, "luamig_version")
        self.binary = binary
        self.env = dict(os.environ, DATABASE_URL="dbname=" + dbname)
        self.project = None

    def use(self, project):
        self.project = project
        self.reset()

    def start(self, verb, target):
        """Starts the command (it runs while Alembic does); finish() waits for it."""
        args = [self.binary, "-q", verb] + ([] if target is None else [target])
        return subprocess.Popen(args, cwd=self.project, env=self.env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    @staticmethod
    def finish(proc):
        out, err = proc.communicate(timeout=60)
        return proc.returncode == 0, out, err.strip()


# ---------------------------------------------------------------- deliberate deviations

RELATIVE = re.compile(r"^(?:(.+?)@)?(\w+)?([+-]\d+)$")
DEVIATIONS = {
    "C1": "downgrade -N from several version rows: refused",
    "base": "LABEL@base of a non-base label: that branch only",
    "merge": "relative downgrade onto a merge's parents: undoes the merge",
    "overlap": "version rows after a step: Alembic's overlap, luamig keeps the heads",
    "keyerror": "merge whose parent a dependency absorbed: Alembic fails (KeyError)",
}


def heads_only(g, rows):
    """rows are exactly the heads of what they apply (none below another)."""
    applied = g.ancestors(rows)
    return set(rows) == applied - {b for i in applied for b in g.below(i, True)}


def deviation(g, verb, target, before, a, lm, alembic):
    """The documented difference a command shows (a, lm: each side's result), or None.
    alembic: the Alembic side, for the steps and order Alembic would pick."""
    alembic_plan, alembic_order = alembic.plan, alembic.order
    if verb not in ("upgrade", "downgrade"):
        return None
    if not (lm["ok"] and heads_only(g, lm["rows"])) and not (
            not lm["ok"] and lm["rows"] == before and not lm["ran"]):
        return None                                # luamig left something inconsistent
    if (verb == "downgrade" and re.fullmatch(r"-\d+", target) and len(before) > 1
            and not lm["ok"] and "Ambiguous downgrade from multiple current revisions" in lm["msg"]):
        return "C1"
    label = target[:-len("@base")] if target.endswith("@base") else None
    if verb == "downgrade" and label in g.label_rev and lm["ok"] and a["ok"]:
        root = g.label_rev[label]
        if g.by_id[root]["down"]:
            branch = g.descendants([root]) & g.ancestors(before)
            undone = {x[1:] for x in lm["ran"]}
            if undone == branch and lm["ran"] == ["-" + x for x in alembic_order(undone, before)]:
                return "base"
    m = RELATIVE.match(target)
    if (verb == "downgrade" and m and m.group(3).startswith("-") and lm["ok"] and not a["ok"]
            and "Ambiguous walk" in a["msg"] and lm["ran"]):
        merge = g.by_id.get(lm["ran"][-1][1:])
        undone = g.descendants([merge["id"]]) & g.ancestors(before) if merge else set()
        if (merge and len(merge["down"]) > 1
                and lm["ran"] == ["-" + x for x in alembic_order(undone, before)]
                and set(merge["down"]) <= g.ancestors(lm["rows"])):
            return "merge"
    if (a["ok"] and lm["ok"] and a["ran"] == lm["ran"] and a["rows"] != lm["rows"]
            and not heads_only(g, a["rows"]) and g.ancestors(a["rows"]) == g.ancestors(lm["rows"])):
        return "overlap"
    if (verb == "upgrade" and not a["ok"] and a["msg"].startswith("KeyError") and lm["ok"]
            and alembic_plan(target, before) == lm["ran"]):
        return "keyerror"
    return None


# ---------------------------------------------------------------- one seed

def run_seed(seed, args, sides):
    rng = random.Random(seed)
    g = gen_graph(rng)
    cmds = gen_commands(rng, g, args.commands)
    root = tempfile.mkdtemp(prefix="luamig-conf-%d-" % seed, dir=args.keep)
    adir, ldir = write_projects(g, root)
    alembic, luamig = sides
    alembic.use(adir)
    luamig.use(ldir)
    marks = [0, 0]
    problems, deviations, trace = [], [], []
    rows = []                                      # both sides' rows before each command
    try:
        for step, (verb, target) in enumerate(cmds, 1):
            proc = luamig.start(verb, target)
            results = [alembic.run(verb, target), luamig.finish(proc)]
            res = []
            for k, side in enumerate(sides):
                ok, out, msg = results[k]
                ran, marks[k] = side.log_since(marks[k])
                res.append({"ok": ok, "msg": msg, "ran": ran, "rows": side.rows(),
                            "out": normalise_listing(out) if verb in ("current", "heads") else []})
            a, lm = res
            what = ("%s %s" % (verb, target or "")).strip()
            if args.trace:
                trace.append(describe_problem(step, what, rows, a, lm))
            if all(a[k] == lm[k] for k in ("ok", "ran", "rows", "out")):
                rows = a["rows"]
                continue
            dev = deviation(g, verb, target, rows, a, lm, alembic)
            if dev:
                deviations.append(DEVIATIONS[dev])
                alembic.set_rows(lm["rows"])       # both go on from luamig's rows
                rows = lm["rows"]
            else:
                problems.append((step, what, rows, a, lm))
                luamig.set_rows(a["rows"])         # both go on from Alembic's rows
                rows = a["rows"]
    finally:
        if args.keep is None:
            shutil.rmtree(root)
    return g, cmds, problems, deviations, root, trace


def describe_graph(g):
    lines = []
    for r in g.revs:
        extra = ""
        if r["labels"]:
            extra += " labels=" + ",".join(r["labels"])
        if r["deps"]:
            extra += " depends_on=" + ",".join(r["deps"])
        lines.append("    %s <- %s%s" % (r["id"], ",".join(r["down"]) or "base", extra))
    return "\n".join(lines)


def describe_problem(step, what, before, a, lm):
    def side(name, r):
        s = "      %-8s %s rows=%s ran=%s" % (name, "ok" if r["ok"] else "ERROR", r["rows"], r["ran"])
        if r["out"]:
            s += " out=%s" % r["out"]
        if r["msg"] and not r["ok"]:
            s += "\n               %s" % r["msg"].splitlines()[-1][:300]
        return s
    return "    step %d: %s (rows before: %s)\n%s\n%s" % (
        step, what, before, side("alembic", a), side("luamig", lm))


# ---------------------------------------------------------------- workers

SIDES = []          # this process's database pair (a worker's, or the only one)


def open_sides(luamig, tag):
    pg = psycopg2.connect(dbname="postgres")
    pg.autocommit = True
    names = ["luamig_conf_%s_%d_%s" % (tag, os.getpid(), k) for k in ("a", "l")]
    with pg.cursor() as c:
        for name in names:
            c.execute("CREATE DATABASE " + name)
    pg.close()
    SIDES[:] = [AlembicSide(names[0]), LuamigSide(names[1], luamig)]


def drop_sides(tag):
    """Drops every database of this run (the workers' too)."""
    for side in SIDES:
        side.close()
    pg = psycopg2.connect(dbname="postgres")
    pg.autocommit = True
    with pg.cursor() as c:
        c.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", ("luamig_conf_%s_%%" % tag,))
        for (name,) in c.fetchall():
            c.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
    pg.close()


def run_batch(job):
    """Runs seeds; returns one report per seed (the text to print with it)."""
    seeds, args = job
    out = []
    for seed in seeds:
        g, cmds, problems, devs, root, trace = run_seed(seed, args, SIDES)
        text = trace[:]
        if problems or args.verbose:
            text.insert(0, "# seed %d: %d revisions, %d disagreements%s\n%s" % (
                seed, len(g.revs), len(problems),
                " (projects in %s)" % root if args.keep else "", describe_graph(g)))
            text += [describe_problem(*p) for p in problems]
        out.append({"seed": seed, "commands": len(cmds), "problems": len(problems),
                    "deviations": devs, "text": "\n".join(text)})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--luamig", required=True)
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--first", type=int, default=1)
    ap.add_argument("--commands", type=int, default=24, help="commands per seed")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes, each with its databases")
    ap.add_argument("--batch", type=int, default=10, help="seeds per TAP line and per job")
    ap.add_argument("--tap", action="store_true", help="TAP lines (ok/not ok) for make test")
    ap.add_argument("--keep", help="keep each seed's projects under this directory")
    ap.add_argument("--trace", action="store_true", help="print every command's results")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every seed's graph")
    args = ap.parse_args()
    args.luamig = os.path.abspath(args.luamig)
    tag = str(os.getpid())
    seeds = list(range(args.first, args.first + args.seeds))
    jobs = [(seeds[b:b + args.batch], args) for b in range(0, len(seeds), args.batch)]
    total_problems, total_cmds, classes = 0, 0, {}
    pool = None
    try:
        if args.jobs > 1:
            pool = multiprocessing.get_context("fork").Pool(
                args.jobs, initializer=open_sides, initargs=(args.luamig, tag))
            results = pool.imap(run_batch, jobs)
        else:
            open_sides(args.luamig, tag)
            results = map(run_batch, jobs)
        for (batch, _), reports in zip(jobs, results):
            bad = []
            for rep in reports:
                total_cmds += rep["commands"]
                total_problems += rep["problems"]
                for d in rep["deviations"]:
                    classes[d] = classes.get(d, 0) + 1
                if rep["text"]:
                    print(rep["text"])
                if rep["problems"]:
                    bad.append(rep["seed"])
            if args.tap:
                print("%s - conformance with Alembic, seeds %d-%d%s" % (
                    "not ok" if bad else "ok", batch[0], batch[-1],
                    ": disagreements in seeds " + " ".join(map(str, bad)) if bad else ""))
            sys.stdout.flush()
    finally:
        if pool:
            pool.terminate()
            pool.join()
        drop_sides(tag)
    print("# %d seeds, %d commands: %d disagreements; deliberate deviations: %s" % (
        len(seeds), total_cmds, total_problems,
        "; ".join("%s: %d" % kv for kv in sorted(classes.items())) or "none"))
    return 1 if total_problems else 0


if __name__ == "__main__":
    sys.exit(main())
