-- scripts/deps.sh: each make target checks (and as root installs) only the packages it
-- needs, announcing a long apt-get in one line; the README, its CI snippet and .ci/run
-- say the same. apt-get is a stand-in here that records its arguments: nothing is
-- installed. #deps
local h = require "helpers"
local checkout = require "checkout"

assert(_VERSION == "Lua 5.4", "run the specs with busted --lua=lua5.4")

local q, must = h.shell_quote, checkout.must
local ROOT = must("id -u") == "0"

local read = checkout.read

local function list(set)
  return must("bash " .. q(h.root .. "/scripts/deps.sh") .. " --list " .. set):gsub("\n", " ")
end

-- Runs deps.sh SET with the commands in hidden off PATH and apt-get a recorder;
-- returns the exit code, stderr, and the apt-get command lines.
local function deps(set, hidden)
  local fake = checkout.scratch()
  local log = fake .. "/apt.log"
  must(("printf '#!/bin/sh\\necho \"$*\" >>%s\\n' >%s/apt-get && chmod +x %s/apt-get && : >%s")
    :format(q(log), q(fake), q(fake), q(log)))
  local code, out, err = h.run({ h.root .. "/scripts/deps.sh", set },
    { bin = "bash", env = { PATH = fake .. ":" .. checkout.path_without(hidden) } })
  assert.equal("", out)
  return code, err, read(log)
end

describe("scripts/deps.sh #deps", function()
  local BUILD = "gcc libc6-dev make liblua5.4-dev libpq-dev"

  it("lists the packages of each set: the demo's are the build's and PostgreSQL", function()
    assert.equal(BUILD, list("build"))
    assert.equal(BUILD .. " postgresql", list("demo"))
    local test = list("test")
    assert.equal(1, test:find(list("demo"), 1, true))
    for _, pkg in ipairs { "lua5.4", "lua-busted", "luarocks", "clang", "libclang-rt-14-dev", "valgrind" } do
      assert.matches("%f[%S]" .. pkg:gsub("%p", "%%%0") .. "%f[%s]", test)
    end
    assert.not_matches("lua%-busted", list("demo"))
    assert.matches("hyperfine", list("bench"), nil, true)
  end)

  it("make demo's set installs no test tool", function()
    local code, err, apt = deps("demo", { "valgrind", "clang", "busted" })
    assert.equal(0, code, err)
    assert.equal("", err)
    assert.equal("", apt)
  end)

  it("make test's set installs the missing test tools, announced in one line", function()
    local code, err, apt = deps("test", { "valgrind", "clang", "busted" })
    assert.are_not.equal(0, code)      -- the stand-in installed nothing
    if ROOT then
      assert.matches("^deps: installing 3 packages: lua%-busted clang valgrind %(apt%-get, may take a minute%)\n", err)
      assert.equal("update -q\ninstall -y -q lua-busted\ninstall -y -q clang valgrind\n", apt)
    else
      assert.equal("", apt)
    end
    assert.matches("deps: WARNING: missing optional packages: clang valgrind ", err, nil, true)
    assert.matches("\ndeps: missing packages for make test: lua%-busted %(as root: apt%-get install lua%-busted%)\n$", err)
  end)
end)

describe("the install docs #deps", function()
  local readme = read(h.root .. "/README.md")

  it("name the packages of each set, and the Dockerfile and the CI snippet install the build's", function()
    for _, set in ipairs { "build", "demo", "test" } do
      assert.matches("| `" .. list(set) .. "` |", readme, nil, true, "README's table lacks the set " .. set)
    end
    assert.matches("apt-get install " .. list("build") .. " ", readme, nil, true)
    -- the CI recipe: the build's packages, and postgresql for luamig test --scratch
    assert.matches("apt-get install -y " .. list("build") .. " postgresql\n", readme, nil, true)
    local docker = read(h.root .. "/examples/docker/Dockerfile"):gsub("\\\n%s*", " ")
    local build_stage = docker:match("\nFROM debian:12 AS build\n(.-)\nFROM ")
    local pkgs = build_stage:match("apt%-get install %-y %-%-no%-install%-recommends%s+([%w%.%- ]-)%s*&&")
    assert.equal(list("build"), pkgs)
  end)

  it("show the command CI runs: .ci/run is make test", function()
    local ci = read(h.root .. "/.ci/run")
    assert.matches("\nmake test\n$", ci)
    assert.matches("This repository's CI runs [`.ci/run`](.ci/run) as root on a clean clone. It is `make test`",
      readme, nil, true)
    assert.matches("run: sudo .ci/run ", readme, nil, true)
  end)
end)
