# frozen_string_literal: true

# Runs Rails' own ActiveSupport cache behaviour tests, unmodified, against the store named by
# STORE (default memory_store; the table is in spec/rails/stores.rb):
#
#   STORE=memory_store ruby spec/rails/cache_behaviors_test.rb [minitest options, e.g. -n /fetch/ --seed 1]
#
# or, for several stores with a summary, spec/rails/run. Rails' test files are not part of this
# repository: spec/rails/fetch_rails_tests fetches Debian's `rails` source package (through apt,
# cached outside the checkout) and names its directory (or set RAILS_TESTS_DIR to such a tree).
# With RAILS_VERSION=7.2 the tests and ActiveSupport itself come from Debian 13's package (its
# activesupport/lib goes first on the load path); the default, 6.1, runs Debian 12's tests against
# the installed ActiveSupport.
#
# The test class mirrors Rails' activesupport/test/cache/stores/memory_store_test.rb: `setup` builds
# `@cache = lookup_store(expires_in: 60)` and `lookup_store(options)` builds a store, so the
# behaviour modules (which call lookup_store themselves, e.g. with a coder:) work as they do in Rails.
# The behaviours are the ones that file includes, plus EncodedKeyCacheBehavior.

require "English"
require_relative "stores"

module RailsCacheBehaviors
  def self.rails_tests_dir
    dir = ENV.fetch("RAILS_TESTS_DIR", "")
    return dir unless dir.empty?

    fetch = File.join(__dir__, "fetch_rails_tests")
    dir = IO.popen([fetch, ENV.fetch("RAILS_VERSION", "6.1")], &:read).to_s.strip
    abort "#{fetch} failed" unless $CHILD_STATUS.success? && File.directory?(dir)
    dir
  end

  # The behaviour modules a store must pass: those Rails' own MemoryStore test includes, and
  # EncodedKeyCacheBehavior (keys in every encoding), which Rails runs against its other stores.
  def self.behaviors(rails_dir)
    memory_store_test = File.read(File.join(rails_dir, "activesupport/test/cache/stores/memory_store_test.rb"))
    class_body = memory_store_test[/^class MemoryStoreTest\b.*?^end$/m]
    (class_body.scan(/^\s*include (Cache\w+Behavior)$/).flatten + ["EncodedKeyCacheBehavior"]).uniq
  end
end

STORE_UNDER_TEST = RailsCacheBehaviors.fetch(ENV.fetch("STORE", "memory_store"))
if (reason = STORE_UNDER_TEST.unavailable_reason)
  abort "STORE=#{STORE_UNDER_TEST.name} can't run: #{reason}"
end
RAILS_DIR = RailsCacheBehaviors.rails_tests_dir
RAILS_BEHAVIORS_DIR = File.join(RAILS_DIR, "activesupport/test/cache/behaviors")
BEHAVIORS = RailsCacheBehaviors.behaviors(RAILS_DIR)
if ENV.fetch("RAILS_VERSION", "6.1") != "6.1"
  # ActiveSupport from the same source tree as its tests.
  $LOAD_PATH.unshift(File.join(RAILS_DIR, "activesupport/lib"))
end

# What Rails' activesupport/test/abstract_unit.rb sets up, minus what needs Rails' repository
# (bundler/setup, tools/test_common) and what these tests don't use (I18n, time zones, parallelize:
# tests run in one process, in random order).
Encoding.default_internal = Encoding::UTF_8
Encoding.default_external = Encoding::UTF_8
require "active_support/testing/autorun"
require "active_support/testing/method_call_assertions" # assert_called(_with), assert_not_called
require "minitest/mock" # Time.stub, Object#stub
require "active_support"
require "active_support/test_case" # freeze_time, assert_not, assert_nothing_raised, ...
require "active_support/cache"
require "active_support/core_ext/numeric/bytes" # 2.kilobytes in CacheStoreBehavior
require "active_support/core_ext/string/inflections" # Encoding names #underscore in EncodedKeyCacheBehavior
require "securerandom"
require "zlib"
Thread.abort_on_exception = true
if ActiveSupport.gem_version >= Gem::Version.new("7.1")
  # As Rails' 7.1+ abstract_unit.rb: the error reporter assertions, deprecations with backtraces,
  # and the 7.1 cache format its tests are written for.
  require "active_support/testing/error_reporter_assertions"
  ActiveSupport.deprecator.debug = true
  ActiveSupport::Cache.format_version = 7.1
else
  ActiveSupport::Deprecation.debug = true
end

begin
  STORE_UNDER_TEST.prepare&.call
rescue LoadError, StandardError => e
  abort "STORE=#{STORE_UNDER_TEST.name} can't run: #{e.class}: #{e.message}"
end

BEHAVIORS.each do |behavior|
  require File.join(RAILS_BEHAVIORS_DIR, behavior.underscore)
end
require_relative "store_extras" # after the behaviours: it builds on them

module RailsCacheBehaviors
  # Base class for the per-store test class defined below.
  class StoreTestCase < ActiveSupport::TestCase
    include ActiveSupport::Testing::MethodCallAssertions
    include ActiveSupport::Testing::ErrorReporterAssertions if defined?(ActiveSupport::Testing::ErrorReporterAssertions)

    def setup
      @cache = lookup_store(expires_in: 60)
    end

    # The one test that needs a gem this machine cannot have (msgpack >= 1.7: Debian 12 packages
    # 1.4), skipped for every store, MemoryStore included, and counted in the summary.
    def before_setup
      super
      skip "needs the msgpack gem >= 1.7, which is not installed" if name.include?("message_pack") && !msgpack?
    end

    def msgpack?
      Gem::Specification.find_all_by_name("msgpack", ">= 1.7.0").any?
    end

    def lookup_store(options = {})
      STORE_UNDER_TEST.build.call(options)
    end
  end

  # e.g. RailsCacheBehaviors::MemoryStoreTest, RailsCacheBehaviors::SyncedL1Test
  const_set("#{STORE_UNDER_TEST.name.camelize}Test", Class.new(StoreTestCase) do
    BEHAVIORS.each { |behavior| include Object.const_get(behavior) }
    # As in Rails' MemoryStoreTest (7.1+): the store compresses only when asked to.
    define_method(:compression_always_disabled_by_default?) { true }
    private :compression_always_disabled_by_default?
    include RailsCacheBehaviors.const_get(STORE_UNDER_TEST.extras) if STORE_UNDER_TEST.extras
  end)
end

Minitest.after_run { STORE_UNDER_TEST.after_run&.call }
