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
advisory lock while it works. It installs the luamig command and the luamig.core module.
]],
  homepage = "https://github.com/luamig/luamig",
  license = "MIT",  -- placeholder until the project adds a LICENSE file
  labels = { "database", "postgresql", "migrations" },
}

dependencies = {
  "lua >= 5.4, < 5.5",
}

external_dependencies = {
  PQ = {
    header = "libpq-fe.h",
    library = "pq",
  },
}

build = {
  type = "make",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
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
