# luamig: a C core (libpq, graph, runner, op API) with Lua 5.4 revisions.
#   make            build the luamig command and the luamig.core module
#   make test       throwaway PostgreSQL + busted specs (normal and ASan/UBSan builds)
#   make demo       private PostgreSQL under .demo/, upgrade the example project, show it
#   make conformance SEEDS=N   differential test against Alembic on N random graphs

LUA_VERSION ?= 5.4
PG_BINDIR   ?= /usr/lib/postgresql/15/bin
CC          ?= cc
LUA_INCDIR  ?= /usr/include/lua$(LUA_VERSION)
PQ_INCDIR   ?= $(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
LUA_LIB     ?= -llua$(LUA_VERSION)
PQ_LIB      ?= -lpq
CRYPTO_LIB  ?= -lcrypto            # OpenSSL, which libpq links anyway: SHA-256 of revision files

CFLAGS  ?= -O2 -g
THREADS  = -pthread                # loader_read.c reads revision files ahead on a second thread
WARN     = -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
CPPFLAGS = -D_POSIX_C_SOURCE=200809L -Iinclude -I$(LUA_INCDIR) -I$(PQ_INCDIR)
SAN      = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# The sources by layer, lowest first: each folder calls only the folders before it
# (spec/layers_spec.lua). The objects stay flat in $(B)/obj/ (file names are unique).
LAYERS   = sql db revs ops run cmd cli
CORE_SRC = src/sql/quote.c src/sql/args.c src/sql/sql.c src/sql/sql_lex.c src/sql/sqltext.c src/sql/sql_table.c \
           src/sql/sql_constraint.c src/sql/sql_object.c src/sql/sql_bookkeeping.c \
           src/db/conn.c src/db/conn_exec.c src/db/owned.c src/db/redact.c src/db/topology.c src/db/prepared.c \
           src/revs/graph.c src/revs/revmap.c src/revs/target.c src/revs/loader.c src/revs/loader_scan.c \
           src/revs/loader_read.c src/revs/sha256.c src/revs/config.c src/revs/sandbox.c src/revs/cache.c \
           src/ops/sink.c src/ops/ops.c src/ops/ops_data.c src/ops/ops_registry.c src/ops/ops_index.c src/ops/ops_backfill.c \
           src/run/version_table.c src/run/lock.c src/run/run.c src/run/backup.c src/run/findings.c src/run/logseen.c src/run/durable.c \
           src/cmd/runner.c src/cmd/stamp.c src/cmd/report.c src/cmd/scaffold.c src/cmd/lint.c src/cmd/autogen.c \
           src/cmd/testcmd.c src/cmd/core.c
CLI_SRC  = src/cli/cli.c src/cli/cli_table.c src/cli/cli_commands.c src/cli/cli_report.c src/cli/cli_test.c \
           src/cli/cli_lib.c src/cli/cli_progress.c src/cli/json.c src/cli/fleet.c src/cli/fleet_pool.c src/cli/fleet_child.c
vpath %.c $(addprefix src/,$(LAYERS))

B  ?= build
OBJ = $(patsubst %.c,$(B)/obj/%.o,$(notdir $(CORE_SRC)))

.PHONY: all asan test demo deps deps-build deps-demo deps-test deps-bench clean bench install fuzz conformance
all: $(B)/luamig $(B)/lib/luamig/core.so

$(B)/obj/%.o: %.c $(wildcard include/*.h src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(CFLAGS) $(THREADS) -fPIC $(CPPFLAGS) -c $< -o $@

# A digest of the sources: the header cache (src/revs/cache.c) and the lint's schema cache
# trust only what this very build wrote.
BUILD_SRC   = $(sort $(wildcard src/*/*.c src/*/*.h include/*.h lua/luamig/*.lua))
LUAMIG_BUILD := $(shell cat /dev/null $(BUILD_SRC) </dev/null | sha256sum | cut -c1-16)
$(B)/obj/cache.o: CPPFLAGS += -DLUAMIG_BUILD='"$(LUAMIG_BUILD)"'
$(B)/obj/cache.o: $(BUILD_SRC)

$(B)/lib/luamig/core.so: $(OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(THREADS) -shared -o $@ $(OBJ) $(PQ_LIB) $(CRYPTO_LIB)

CLI_OBJ = $(patsubst %.c,$(B)/obj/%.o,$(notdir $(CLI_SRC))) $(B)/obj/embedded_lua.o

# The Lua modules the command carries inside (package.preload), so it needs no Lua
# files at run time; luamig/core.so finds them on package.path instead. scripts/embed.c
# writes them as C arrays (after compiling each): the build runs no lua5.4 binary.
EMBED_LUA  = lua/luamig/schema.lua lua/luamig/normalize.lua lua/luamig/introspect.lua \
             lua/luamig/render.lua \
             lua/luamig/autogen.lua lua/luamig/autogen_table.lua lua/luamig/lint.lua lua/luamig/lint_actions.lua lua/luamig/lint_rules.lua \
             lua/luamig/lint_sql.lua lua/luamig/lint_inverse.lua lua/luamig/lint_cache.lua \
             lua/luamig/lint_style.lua lua/luamig/opspec.lua \
             lua/luamig/sqltext.lua lua/luamig/types.lua \
             lua/luamig/schemadiff.lua lua/luamig/scratch.lua lua/luamig/testrun.lua

$(B)/embed: scripts/embed.c
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(CFLAGS) $(CPPFLAGS) -o $@ $< $(LUA_LIB) -lm

$(B)/gen/embedded_lua.c: $(B)/embed $(EMBED_LUA)
	@mkdir -p $(dir $@)
	$(B)/embed $@ $(EMBED_LUA)

$(B)/obj/embedded_lua.o: $(B)/gen/embedded_lua.c $(wildcard include/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(CFLAGS) $(THREADS) -fPIC $(CPPFLAGS) -c $< -o $@

$(B)/luamig: $(OBJ) $(CLI_OBJ)
	$(CC) $(CFLAGS) $(THREADS) -o $@ $(OBJ) $(CLI_OBJ) $(LUA_LIB) $(PQ_LIB) $(CRYPTO_LIB) -lm

# The sanitizer build: only the command (a sanitized .so cannot load into a plain lua5.4).
asan:
	$(MAKE) B=build-asan CFLAGS="-O1 -g $(SAN)" build-asan/luamig

# What each target needs, installed with apt-get when we are root (scripts/deps.sh).
deps: deps-test
deps-build deps-demo deps-test deps-bench:
	@bash scripts/deps.sh $(@:deps-%=%)

test: deps-test all asan
	@bash scripts/test.sh

demo: deps-demo all
	@bash scripts/demo.sh

bench: deps-bench all
	@bash bench/run.sh
	@bash bench/autogen.sh
	@bash bench/fleet.sh

# scripts/conformance: luamig against Alembic (python3-alembic) on SEEDS random graphs.
SEEDS ?= 200
conformance: deps all
	@bash scripts/conformance/run.sh --seeds $(SEEDS) --jobs 2

# libFuzzer targets (clang): 60 s each; make test runs them for a few seconds.
fuzz:
	@bash scripts/fuzz.sh 60

clean:
	rm -rf build build-asan build-fuzz

# The seed project's targets (db-setup, db-migrate, db-migrate-create, db-migrate-rollback,
# db-migrate-history, db-migrate-current, db-reset) on DATABASE_URL or the demo cluster.
db-%: deps-demo all
	@bash scripts/db.sh $*

# make install [PREFIX=/usr/local] [DESTDIR=...]: the command, the luamig module (Lua files and
# luamig/core.so), the man page and the bash/zsh completions. LIBDIR and LUADIR are Lua's
# module directories under PREFIX (the names LuaRocks passes to `make install`).
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
LIBDIR      ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
LUADIR      ?= $(PREFIX)/share/lua/$(LUA_VERSION)
MANDIR      ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/site-functions
INSTALL     ?= install
LUA_FILES    = $(wildcard lua/luamig/*.lua)

.PHONY: uninstall
install: all
	$(INSTALL) -d "$(DESTDIR)$(BINDIR)" "$(DESTDIR)$(LIBDIR)/luamig" "$(DESTDIR)$(LUADIR)/luamig" \
	  "$(DESTDIR)$(MANDIR)/man1" "$(DESTDIR)$(BASHCOMPDIR)" "$(DESTDIR)$(ZSHCOMPDIR)"
	$(INSTALL) -m 755 $(B)/luamig "$(DESTDIR)$(BINDIR)/luamig"
	$(INSTALL) -m 755 $(B)/lib/luamig/core.so "$(DESTDIR)$(LIBDIR)/luamig/core.so"
	$(INSTALL) -m 644 $(LUA_FILES) "$(DESTDIR)$(LUADIR)/luamig/"
	$(INSTALL) -m 644 docs/luamig.1 "$(DESTDIR)$(MANDIR)/man1/luamig.1"
	$(INSTALL) -m 644 completions/luamig.bash "$(DESTDIR)$(BASHCOMPDIR)/luamig"
	$(INSTALL) -m 644 completions/_luamig "$(DESTDIR)$(ZSHCOMPDIR)/_luamig"

uninstall:
	rm -f "$(DESTDIR)$(BINDIR)/luamig" "$(DESTDIR)$(LIBDIR)/luamig/core.so" \
	  $(LUA_FILES:lua/luamig/%="$(DESTDIR)$(LUADIR)/luamig/%") \
	  "$(DESTDIR)$(MANDIR)/man1/luamig.1" "$(DESTDIR)$(BASHCOMPDIR)/luamig" \
	  "$(DESTDIR)$(ZSHCOMPDIR)/_luamig"
	rmdir "$(DESTDIR)$(LIBDIR)/luamig" "$(DESTDIR)$(LUADIR)/luamig" 2>/dev/null || true
