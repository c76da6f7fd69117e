rockspec_format = "3.0"
package = "luamig"
version = "scm-1"

source = {
  url = "git+https://github.com/luamig/luamig.git",
}

description = {
  summary = "PostgreSQL schema migrations: Alembic's workflow, a C core, Lua 5.4 revisions",
  detailed = [[
luamig applies versioned schema changes to PostgreSQL. Revisions are Lua files with
upgrade() and downgrade() functions that call an op API (create_table, add_column,
create_index, execute, ...); the engine, written in C over libpq, tracks the applied
revision in a version table, runs each revision in its own transaction and holds an
advisory lock while it works. It installs the luamig command, the luamig module (with
luamig.core) and, inside the rock's directory, the man page and shell completions.
]],
  homepage = "https://github.com/luamig/luamig",
  license = "MIT",
  labels = { "database", "postgresql", "migrations" },
}

dependencies = {
  "lua >= 5.4, < 5.5",
}

-- Only the library is looked up: Debian and Ubuntu keep libpq-fe.h in
-- include/postgresql/, which LuaRocks' header lookup (PREFIX/include) misses, so
-- `luarocks make` would stop there. The build adds both $(PQ_INCDIR) and
-- $(PQ_INCDIR)/postgresql to the include path, which covers both layouts; an explicit
-- `luarocks make PQ_INCDIR=/usr/include/postgresql` (or PQ_DIR=...) works as well.
external_dependencies = {
  PQ = {
    library = "pq",
  },
}

build = {
  type = "make",
  build_variables = {
    CFLAGS = "$(CFLAGS) -I$(PQ_INCDIR)/postgresql",
    LIBFLAG = "$(LIBFLAG)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    LUA_LIBDIR = "$(LUA_LIBDIR)",
    PQ_INCDIR = "$(PQ_INCDIR)",
    PQ_LIBDIR = "$(PQ_LIBDIR)",
    PQ_LIB = "-L$(PQ_LIBDIR) -lpq",
  },
  install_variables = {
    PREFIX = "$(PREFIX)",
    LUADIR = "$(LUADIR)",
    LIBDIR = "$(LIBDIR)",
    BINDIR = "$(BINDIR)",
  },
}
