-- spec/checkout.lua: clean clones of this work tree as it stands (committed or not), for
-- the specs that do what a new user does: make demo in a fresh clone, the Dockerfile's
-- build stage, luarocks pack of a source rock.
local h = require "helpers"

local q = h.shell_quote
local M = {}

local function must(cmd)
  local code, out = h.sh(cmd)
  assert(code == 0, ("command failed (exit %d): %s\n%s"):format(code, cmd, out))
  return (out:gsub("\n$", ""))
end
M.must = must

-- The text of a file; writing one.
function M.read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

function M.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- make, luarocks and the scripts must not see the MAKEFLAGS of a `make test` around them,
-- nor any database of the caller's.
M.CLEAN_ENV = {
  MAKEFLAGS = false, MAKELEVEL = false, MFLAGS = false,
  DATABASE_URL = false, PGDATABASE = false, PGSERVICE = false, PGPASSWORD = false,
}

-- An empty scratch directory under the spec session's temp dir.
function M.scratch()
  local dir = h.project({}, "") .. "/s"
  must("mkdir " .. q(dir))
  return dir
end

local origin   -- made once per spec file (busted reloads the modules per file)

-- A git repository whose one commit holds the work tree's files as they are now: the
-- tracked ones (edits included, deleted ones left out) and the new ones git does not
-- ignore. Cloning it is cloning this tree as if its changes were committed.
function M.origin()
  if origin then return origin end
  assert(h.sh("git -C " .. q(h.root) .. " rev-parse --git-dir >/dev/null") == 0,
    h.root .. " is not a git checkout: these specs clone it")
  local dir = M.scratch() .. "/origin"
  must("mkdir " .. q(dir))
  must(("cd %s && bash -c %s | tar -C %s -xf -"):format(q(h.root), q([==[
    git ls-files -z -c -o --exclude-standard |
      while IFS= read -r -d '' f; do [[ -e $f ]] && printf '%s\0' "$f"; done |
      tar --null -T - -cf -]==]), q(dir)))
  must(("cd %s && git init -q && git add -A && "
        .. "git -c user.name=spec -c user.email=spec@localhost commit -q -m 'the work tree'")
    :format(q(dir)))
  origin = dir
  return dir
end

-- git clone of the work tree into dest (which must not exist yet); returns dest.
function M.clone(dest)
  must(("git clone -q %s %s"):format(q(M.origin()), q(dest)))
  return dest
end

local without = {}   -- PATH directories made so far in this spec file, by what they hide

-- A directory to use as PATH: every command on PATH but those named in hidden (under any
-- name: a link to lua5.4 is hidden with lua5.4), as on a machine without their packages.
function M.path_without(hidden)
  local key = table.concat(hidden, " ")
  if without[key] then return without[key] end
  local dir, words = M.scratch() .. "/bin", {}
  for i, n in ipairs(hidden) do words[i] = q(n) end
  must("mkdir " .. q(dir))
  must(("cd %s && bash -c %s _ %s"):format(q(dir), q([==[
    declare -A hide
    for n in "$@"; do hide[$n]=1; done
    IFS=: read -ra dirs <<<"$PATH"
    for d in "${dirs[@]}"; do
      for f in "$d"/*; do
        n=${f##*/}
        [[ -x $f && ! -d $f && ! -e $n && ! -L $n && -z ${hide[$n]:-} ]] || continue
        if [[ -L $f ]]; then t=$(readlink -f "$f"); [[ -z ${hide[${t##*/}]:-} ]] || continue; fi
        ln -s "$f" "$n"
      done
    done]==]), table.concat(words, " ")))
  for _, n in ipairs(hidden) do
    assert(h.sh("PATH=" .. q(dir) .. " command -v " .. q(n)) ~= 0, n .. " is still on " .. dir)
  end
  without[key] = dir
  return dir
end

-- PATH without lua5.4: the build must need no Lua interpreter.
function M.path_without_lua54()
  return M.path_without { "lua5.4", "luac5.4" }
end

return M
