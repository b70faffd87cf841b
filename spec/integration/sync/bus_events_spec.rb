# frozen_string_literal: true

require "logger"
require "stringio"

# What a store's bus goes through reaches the application as
# ActiveSupport::Notifications events (connected, disconnected, resubscribed,
# rejected: see SyncedMemoryStore::BusEvents), and SyncedMemoryStore::LogSubscriber
# writes one line for each.
RSpec.describe "Sync: bus events" do
  include SyncHelpers

  let(:bus) { start_redis }
  let(:events) { Queue.new }
  let(:stores) { [] }

  around do |example|
    subscriber = ActiveSupport::Notifications.subscribe(/\.synced_memory_store\z/) do |name, *, payload|
      events << [name, payload]
    end
    example.run
  ensure
    ActiveSupport::Notifications.unsubscribe(subscriber)
    stores.each(&:close)
  end

  def store(**options)
    SyncedMemoryStore::Store.new(cache: :memory_store, **bus_options(bus, **options)).tap { |store| stores << store }
  end

  # The next event, within +timeout+ seconds.
  def next_event(timeout: 5)
    wait_until(timeout: timeout, message: "no bus event within #{timeout}s") { !events.empty? }
    events.pop
  end

  it "tells when the bus is connected, lost (with the cause) and back (with L1 dropped)" do
    store(health_interval: 0.05, health_timeout: 0.2, reconnect_max: 0.05).wait_for_connection

    name, payload = next_event
    expect(name).to eq("connected.synced_memory_store")
    expect(payload[:store]).to include(bus.url.delete_suffix("/0"))

    bus.kill
    name, payload = next_event
    expect(name).to eq("disconnected.synced_memory_store")
    expect(payload[:cause]).to match(/closed the connection|refused the connection|did not answer/)

    bus.start
    name, payload = next_event(timeout: 10)
    expect(name).to eq("resubscribed.synced_memory_store")
    expect(payload).to include(reconnects: 1, l1_dropped: true)
  end

  it "tells about rejected messages once per cause a minute, with a count" do
    store.wait_for_connection
    expect(next_event.first).to eq("connected.synced_memory_store")

    publish_raw(bus, "garbage", "more garbage", "SMS\x02\x00".b)

    rejected = [next_event, next_event].sort_by { |(_, payload)| payload[:cause].to_s }
    expect(rejected.map(&:first)).to all(eq("rejected.synced_memory_store"))
    expect(rejected.map { |(_, payload)| payload.slice(:cause, :count, :missed) }).to eq(
      [{ cause: :malformed, count: 1, missed: true }, { cause: :not_ours, count: 1, missed: false }]
    )
    publish_raw(bus, "still garbage")
    expect { next_event(timeout: 0.5) }.to raise_error(RSpec::Expectations::ExpectationNotMetError)
  end

  it "writes one log line per event" do
    log = StringIO.new
    previous = ActiveSupport::Cache::Store.logger
    ActiveSupport::Cache::Store.logger = Logger.new(log)
    store.wait_for_connection
    next_event
    publish_raw(bus, "garbage")
    next_event

    expect(log.string).to include("synced_memory_store: connected to")
    expect(log.string).to match(/rejected 1 message\(s\) on .*: a message that is not from synced_memory_store/)
  ensure
    ActiveSupport::Cache::Store.logger = previous
  end
end
