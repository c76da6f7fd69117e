-- spec/dockerfile.lua: enough of a Dockerfile interpreter to run a stage without Docker,
-- for spec/docker_spec.lua. A directory stands in for the image's root: WORKDIR and COPY
-- land under it; RUN runs `sh -c` in WORKDIR under it, with the absolute paths whose first
-- directory is not a system one of this machine (/out, /src, /app) taken inside it. A RUN
-- that installs packages with apt-get is not run: each package must be installed here
-- already (dpkg -s), else the spec fails naming it.
local h = require "helpers"
local checkout = require "checkout"

local q, must = h.shell_quote, checkout.must
local D = {}

-- Parses text into stages: { image =, name =, workdir = (the last WORKDIR),
-- steps = { { op = "RUN", arg = "..." }, ... }, cmd = { "sh", "-c", "..." } }.
function D.parse(text)
  local lines = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    if not line:match("^%s*#") then lines[#lines + 1] = line end   -- comments go first, as in Docker
  end
  local stages, stage = {}, nil
  local joined = table.concat(lines, "\n"):gsub("\\\n", " ")
  for line in joined:gmatch("[^\n]+") do
    local op, arg = line:match("^%s*(%u+)%s+(.-)%s*$")
    if op == "FROM" then
      local image, name = arg:match("^(%S+)%s+[Aa][Ss]%s+(%S+)$")
      stage = { image = image or arg, name = name, steps = {}, workdir = "/" }
      stages[#stages + 1] = stage
    elseif op then
      assert(stage, "a " .. op .. " before any FROM")
      if op == "CMD" then
        assert(not arg:find("\\", 1, true), "spec/dockerfile.lua reads no escapes in CMD: " .. arg)
        stage.cmd = {}
        for word in arg:gmatch('"([^"]*)"') do stage.cmd[#stage.cmd + 1] = word end
      elseif op == "WORKDIR" then
        stage.workdir = arg:sub(1, 1) == "/" and arg or (stage.workdir .. "/" .. arg)
        stage.steps[#stage.steps + 1] = { op = op, arg = stage.workdir }
      elseif op == "COPY" or op == "RUN" or op == "USER" then
        stage.steps[#stage.steps + 1] = { op = op, arg = arg }
      else
        error("spec/dockerfile.lua does not know the instruction " .. op .. ": teach it")
      end
    end
  end
  return stages
end

local SYSTEM = {}
for d in ("bin boot dev etc home lib lib32 lib64 libx32 media mnt opt proc root run sbin srv sys tmp usr var")
    :gmatch("%S+") do SYSTEM[d] = true end

-- cmd with its image paths (/out/..., not /usr/...) moved under root.
local function in_image(cmd, root)
  return (((" " .. cmd):gsub("([%s=:'\"])/([%w._-]+)", function(before, first)
    if SYSTEM[first] then return nil end
    return before .. root .. "/" .. first
  end)):sub(2))
end

local function installed(pkg)
  return h.sh("dpkg -s " .. q(pkg) .. " 2>/dev/null | grep -qx 'Status: install ok installed'") == 0
end

-- For a RUN that sets the system up (apt-get, useradd): checks that what it installs is
-- installed here and returns what it skips; nil for any other RUN.
local function system_setup(arg)
  if not arg:find("apt%-get") then return nil end
  local skipped = {}
  for part in (arg .. "&&"):gmatch("%s*(.-)%s*&&") do
    local install = part:match("^[%u_=%w]*%s*apt%-get install (.*)$")
    if install then
      local pkgs = {}
      for word in install:gmatch("%S+") do
        if word:sub(1, 1) ~= "-" then
          assert(installed(word), ("the Dockerfile installs %s, which is not installed here: "
            .. "apt-get install %s, then run the spec again"):format(word, word))
          pkgs[#pkgs + 1] = word
        end
      end
      skipped[#skipped + 1] = "apt-get install " .. table.concat(pkgs, " ")
    elseif part:match("^useradd ") then
      skipped[#skipped + 1] = part
    else
      assert(part == "apt-get update" or part == "rm -rf /var/lib/apt/lists/*",
        "spec/dockerfile.lua does not know how to skip this part of a RUN: " .. part)
    end
  end
  return skipped
end

-- COPY [--from=STAGE] SRC... DEST, as Docker does it: a directory's contents, files into
-- a directory when DEST ends in / (or there are several), else to DEST.
local function copy(arg, o, workdir)
  local words = {}
  for w in arg:gmatch("%S+") do words[#words + 1] = w end
  local from = words[1]:match("^%-%-from=(.+)$")
  if from then table.remove(words, 1) end
  local dest = table.remove(words)
  dest = o.root .. (dest:sub(1, 1) == "/" and dest or (workdir .. "/" .. dest))
  for _, src in ipairs(words) do
    local path = from and (assert(o.roots[from], "no stage named " .. from) .. src) or (o.context .. "/" .. src)
    assert(h.sh("test -e " .. q(path)) == 0, "COPY " .. arg .. ": " .. src .. " does not exist")
    if h.sh("test -d " .. q(path)) == 0 then
      must(("mkdir -p %s && cp -a %s/. %s/"):format(q(dest), q(path), q(dest)))
    elseif dest:sub(-1) == "/" or #words > 1 then
      must(("mkdir -p %s && cp -a %s %s"):format(q(dest), q(path), q(dest)))
    else
      must(("mkdir -p \"$(dirname %s)\" && cp -a %s %s"):format(q(dest), q(path), q(dest)))
    end
  end
end

-- Runs stage's steps in o.root (created), COPY taking from o.context or from o.roots[STAGE]
-- (filled as stages run), RUN with PATH o.path. Returns the system setup it skipped.
function D.run(stage, o)
  local skipped, workdir = {}, "/"
  must("mkdir -p " .. q(o.root))
  for _, step in ipairs(stage.steps) do
    if step.op == "WORKDIR" then
      workdir = step.arg
      must("mkdir -p " .. q(o.root .. workdir))
    elseif step.op == "COPY" then
      copy(step.arg, o, workdir)
    elseif step.op == "RUN" then
      local setup = system_setup(step.arg)
      if setup then
        for _, s in ipairs(setup) do skipped[#skipped + 1] = s end
      else
        local code, out, err = h.run({ "-c", in_image(step.arg, o.root) }, {
          bin = "sh", cwd = o.root .. workdir, timeout = 900,
          env = { PATH = o.path, MAKEFLAGS = false, MAKELEVEL = false, MFLAGS = false },
        })
        assert(code == 0, ("RUN %s: exit %d\n%s%s"):format(step.arg, code, out, err))
      end
    end                                              -- USER: the spec runs as it is
  end
  if stage.name then o.roots[stage.name] = o.root end
  return skipped
end

return D
