# frozen_string_literal: true

# A real Rails application (spec/rails_app) with
#   config.cache_store = :synced_memory_store, { cache: [:redis_cache_store, …], redis: … }
# served by Puma in cluster mode: two workers forked after the application
# loaded (preload_app!), each with its own bus threads. A change made through
# one worker reaches the other worker's memory; the bus is signed with the key
# the Railtie derives from secret_key_base; events reach a subscriber in the
# application.
RSpec.describe "Rails in Puma's cluster mode", :puma do
  include SyncHelpers

  let(:bus) { start_redis }
  let(:l2_server) { start_redis }
  let(:app) { PumaApp.new(bus_url: bus.url, l2_url: l2_server.url) }

  before { app.start }

  after do |example|
    warn "\n#{example.full_description} failed; the app's log:\n#{app.log_tail}" if example.exception
    app.stop
  end

  # Asks until every one of the two workers has answered +path+ in a way the
  # block accepts; returns { pid => answer }.
  def from_every_worker(path, timeout: 15, **params)
    answers = {}
    last = {}
    eventually(timeout: timeout) do
      answer = app.get(path, **params)
      last[answer["pid"]] = answer if answer
      answers[answer["pid"]] = answer if answer && (!block_given? || yield(answer))
      answers.size == 2
    end
    answers
  rescue RSpec::Expectations::ExpectationNotMetError
    stats = {}
    20.times { (answer = app.get("/stats")) && (stats[answer["pid"]] = answer) }
    raise RSpec::Expectations::ExpectationNotMetError,
          "not every worker answered #{path} #{params} as expected: accepted #{answers}, last answers #{last}; " \
          "stats #{stats}"
  end

  it "keeps every worker's memory in sync, signed, with events reaching the application" do
    workers = from_every_worker("/stats") { |stats| stats["connected"] && stats["trusted"] }
    expect(workers.values.map { |stats| stats["signed"] }).to all(be(true))

    app.post("/write", key: "flag", value: "on")
    from_every_worker("/read", key: "flag") { |read| read["value"] == "on" && read["source"] == "l1" }

    app.post("/write", key: "flag", value: "off")
    from_every_worker("/read", key: "flag") { |read| read["value"] == "off" && read["source"] == "l1" }

    app.post("/delete", key: "flag")
    from_every_worker("/read", key: "flag") { |read| read["value"].nil? }

    fetched = app.get("/fetch", key: "settings", value: "computed once")
    expect(fetched).to include("value" => "computed once", "computed" => true)
    from_every_worker("/fetch", key: "settings", value: "computed again") do |answer|
      answer["value"] == "computed once" && !answer["computed"]
    end

    # Someone without the secret publishes on the channel: every worker rejects it.
    rejected = from_every_worker("/stats").transform_values { |stats| stats["rejected"] }
    unsigned = SyncedMemoryStore::Store.new(redis: bus.url, channel: app.channel)
    unsigned.wait_for_connection
    unsigned.write("flag", "forged")
    unsigned.flush_sync
    from_every_worker("/stats") { |stats| stats["rejected"] > rejected.fetch(stats["pid"]) }
    from_every_worker("/read", key: "flag") { |read| read["value"].nil? }

    events = from_every_worker("/events").values.map { |answer| answer["events"] }
    expect(events).to all(include("connected.synced_memory_store", "cache_read.active_support",
                                  "rejected.synced_memory_store"))
  ensure
    unsigned&.close
  end
end
