# frozen_string_literal: true

# Runs Rails' own ActiveSupport 6.1 cache behaviour tests, unmodified, against the store named by
# STORE (default memory_store; the table is in spec/rails/stores.rb):
#
#   STORE=memory_store ruby spec/rails/cache_behaviors_test.rb [minitest options, e.g. -n /fetch/ --seed 1]
#
# or, for several stores with a summary, spec/rails/run. Rails' test files are not part of this
# repository: spec/rails/fetch_rails_tests fetches Debian's `rails` source package (through apt,
# cached outside the checkout) and names its directory (or set RAILS_TESTS_DIR to such a tree).
#
# The test class mirrors Rails' activesupport/test/cache/stores/memory_store_test.rb: `setup` builds
# `@cache = lookup_store(expires_in: 60)` and `lookup_store(options)` builds a store, so the
# behaviour modules (which call lookup_store themselves, e.g. with a coder:) work as they do in Rails.

require "English"
require_relative "stores"
require_relative "store_extras"

module RailsCacheBehaviors
  # The behaviour modules from activesupport/test/cache/behaviors/ that a store must pass.
  BEHAVIORS = %w[
    CacheStoreBehavior
    CacheStoreVersionBehavior
    CacheStoreCoderBehavior
    CacheDeleteMatchedBehavior
    CacheIncrementDecrementBehavior
    EncodedKeyCacheBehavior
    CacheInstrumentationBehavior
  ].freeze

  def self.rails_tests_dir
    dir = ENV.fetch("RAILS_TESTS_DIR", "")
    return dir unless dir.empty?

    fetch = File.join(__dir__, "fetch_rails_tests")
    dir = IO.popen([fetch], &:read).to_s.strip
    abort "#{fetch} failed" unless $CHILD_STATUS.success? && File.directory?(dir)
    dir
  end
end

STORE_UNDER_TEST = RailsCacheBehaviors.fetch(ENV.fetch("STORE", "memory_store"))
if (reason = STORE_UNDER_TEST.unavailable_reason)
  abort "STORE=#{STORE_UNDER_TEST.name} can't run: #{reason}"
end
RAILS_BEHAVIORS_DIR = File.join(RailsCacheBehaviors.rails_tests_dir, "activesupport/test/cache/behaviors")

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
ActiveSupport::Deprecation.debug = true

begin
  STORE_UNDER_TEST.prepare&.call
rescue LoadError, StandardError => e
  abort "STORE=#{STORE_UNDER_TEST.name} can't run: #{e.class}: #{e.message}"
end

RailsCacheBehaviors::BEHAVIORS.each do |behavior|
  require File.join(RAILS_BEHAVIORS_DIR, behavior.underscore)
end

module RailsCacheBehaviors
  # Base class for the per-store test class defined below.
  class StoreTestCase < ActiveSupport::TestCase
    include ActiveSupport::Testing::MethodCallAssertions

    def setup
      @cache = lookup_store(expires_in: 60)
    end

    def lookup_store(options = {})
      STORE_UNDER_TEST.build.call(options)
    end
  end

  # e.g. RailsCacheBehaviors::MemoryStoreTest, RailsCacheBehaviors::SyncedL1Test
  const_set("#{STORE_UNDER_TEST.name.camelize}Test", Class.new(StoreTestCase) do
    BEHAVIORS.each { |behavior| include Object.const_get(behavior) }
    include RailsCacheBehaviors.const_get(STORE_UNDER_TEST.extras) if STORE_UNDER_TEST.extras
  end)
end

Minitest.after_run { STORE_UNDER_TEST.after_run&.call }
