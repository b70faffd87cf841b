# frozen_string_literal: true

require "json"

# Rack endpoints over Rails.cache for the Puma cluster spec. Every answer is
# JSON and names the worker that served it (its pid), so the spec can tell
# the workers apart.
class CacheEndpoints
  # Events this worker's subscribers saw, by name (a subscriber in the app:
  # the spec checks that both the cache's and the bus's events reach it).
  EVENTS = Hash.new(0)
  EVENTS_LOCK = Mutex.new

  ActiveSupport::Notifications.subscribe(/\A(cache_\w+\.active_support|\w+\.synced_memory_store)\z/) do |name, *|
    EVENTS_LOCK.synchronize { EVENTS[name] += 1 }
  end

  # The store's stats a /stats answer carries.
  STATS = %i[connected trusted rejected missed l1_hits applied received published conflicts reconnects pending
             queued invalidated last_error].freeze

  def initialize(action)
    @action = action
  end

  def call(env)
    params = Rack::Request.new(env).params
    body = { pid: Process.pid }.merge(send(@action, params))
    [200, { "content-type" => "application/json" }, [JSON.generate(body)]]
  end

  private

  def pid(_params)
    {}
  end

  # What Rails.cache.read returns and where the hit came from (:l1 or :l2).
  def read(params)
    source = nil
    capture = ->(*, payload) { source = payload[:source] }
    value = ActiveSupport::Notifications.subscribed(capture, "cache_read.active_support") do
      Rails.cache.read(params.fetch("key"))
    end
    { value: value, source: source }
  end

  def write(params)
    { written: Rails.cache.write(params.fetch("key"), params.fetch("value")) }
  end

  def delete(params)
    { deleted: Rails.cache.delete(params.fetch("key")) }
  end

  def fetch(params)
    computed = false
    value = Rails.cache.fetch(params.fetch("key")) do
      computed = true
      params.fetch("value")
    end
    { value: value, computed: computed }
  end

  def stats(_params)
    Rails.cache.stats.slice(*STATS).merge(signed: Rails.cache.inspect.include?(" signed "))
  end

  def events(_params)
    EVENTS_LOCK.synchronize { { events: EVENTS.dup } }
  end
end
