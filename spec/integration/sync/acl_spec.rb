# frozen_string_literal: true

require "logger"
require "redis"
require "stringio"

# The bus as a Redis ACL user allowed only what the bus does: SUBSCRIBE and
# PUBLISH on its channel, and PING (the health check), on a server whose
# default user is off. That is all it needs on database 0 (redis-rs's AUTH
# needs no permission, and its CLIENT SETINFO may be refused: it ignores the
# answer); each of them is needed, and a refusal says which. README:
# "Deploying the bus" gives the same ACL SETUSER line.
# (A user allowed every command but another channel: connection_errors_spec.rb.)
RSpec.describe "Sync: the bus as a Redis ACL user" do
  include SyncHelpers

  let(:bus) { start_redis }
  let(:password) { "bus-password-#{SecureRandom.hex(4)}" }
  let(:stores) { [] }

  after { stores.each(&:close) }

  # The user "bus" (new: without any permission) with +permissions+.
  def bus_user(*permissions)
    expect(bus.command("ACL", "SETUSER", "bus", "on", ">#{password}", *permissions)).to eq("+OK")
  end

  # As in README: "Deploying the bus".
  def minimal_permissions
    ["resetchannels", "&#{channel}", "-@all", "+subscribe", "+publish", "+ping"]
  end

  # Turns the default user off (the last command this server takes from the
  # specs' helper, which connects as the default user).
  def default_user_off
    expect(bus.command("ACL", "SETUSER", "default", "off")).to eq("+OK")
  end

  def url(user: "bus", secret: password, db: 0)
    "redis://#{user}:#{secret}@127.0.0.1:#{bus.port}/#{db}"
  end

  def store(redis, connect: true)
    SyncedMemoryStore::Store.new(cache: :memory_store, redis: redis, channel: channel, health_timeout: 0.3,
                                 health_interval: 0.1).tap do |store|
      stores << store
      store.wait_for_connection if connect
    end
  end

  # Why a store on +redis+ is not connected (stats[:last_error]).
  def refusal(redis)
    why_not_connected(store(redis, connect: false))
  end

  context "with the minimal permissions and the default user off" do
    before do
      bus_user(*minimal_permissions)
      default_user_off
    end

    it "syncs between processes, the user given in the URL" do
      writer, reader = spawn_peers(:writer, :reader, redis: url, channel: channel, cache: :memory_store)
      wait_for_connections(writer, reader)

      writer.write("user:1", "Ada")
      eventually(message: "the write never reached the reader's L1") { reader.l1_read("user:1") == [:hit, "Ada"] }
      writer.delete("user:1")
      eventually(message: "the delete never reached the reader") { reader.l1_read("user:1") == [:miss] }
      expect(reader.l2_read("user:1")).to be_nil
    end

    it "syncs with the user given as username: and password: in the Hash form" do
      redis = { url: bus.url, username: "bus", password: password }
      writer = store(redis)
      reader = store(redis)

      writer.write("flag", "on")
      eventually(message: "the write never reached the other store") { reader.read("flag") == "on" }
      expect(reader.stats).to include(l2_hits: 0)
    end

    it "says the credentials were refused, without the password, in either form" do
      [url(secret: "hunter2-wrong"), { url: bus.url, username: "bus", password: "hunter2-wrong" }].each do |redis|
        cause = refusal(redis)

        expect(cause).to include("refused the credentials").and include("check the username and password")
        expect(cause).not_to include("hunter2")
      end
    end
  end

  describe "each permission of the minimal set" do
    def without(*permissions)
      bus_user(*(minimal_permissions - permissions))
      refusal(url)
    end

    it "is needed: the channel" do
      expect(without("&#{channel}")).to include("NOPERM").and include(channel)
    end

    it "is needed: SUBSCRIBE" do
      expect(without("+subscribe")).to include("NOPERM").and include("'subscribe'")
    end

    it "is needed: PING" do
      expect(without("+ping")).to include("NOPERM").and include("'ping'")
    end

    # The subscription is up, so the store is connected; what it cannot do is
    # tell the others. A PUBLISH the server refuses is refused again on a new
    # connection: the publisher waits longer after each (up to reconnect_max)
    # rather than reconnecting as fast as the server answers.
    it "is needed: PUBLISH, whose refusal is retried with a growing wait" do
      bus_user(*(minimal_permissions - ["+publish"]))
      cache = store(url)
      cache.write("k", "v")
      eventually(message: "the refused PUBLISH was never reported") { cache.stats[:last_error]&.include?("NOPERM") }
      expect(cache.stats[:last_error]).to include("'publish'")

      admin = Redis.new(url: bus.url)
      connections = -> { admin.info("stats")["total_connections_received"].to_i }
      before = connections.call
      sleep 1 # a window to count connections in, not a wait for something to happen
      expect(connections.call - before).to be < 20 # 10 ms doubling: 7 tries in a second; without the wait, thousands
      cache.close(0.1) # its change can never be announced: no use waiting for it
    ensure
      admin&.close
    end

    # Other processes cannot tell a writer whose changes never leave it from
    # one that wrote nothing (their L1 stays trusted), so the writer says so
    # itself: changes waiting longer than a healthy publisher takes
    # (reconnect_max + health_timeout) are reported, once, and the report ends
    # when they go out.
    it "is needed: PUBLISH, and changes held back by its refusal are reported until they go out" do
      bus_user(*(minimal_permissions - ["+publish"]))
      events = []
      subscription = ActiveSupport::Notifications.subscribe("unpublished.synced_memory_store") do |*, payload|
        events << payload
      end
      cache = SyncedMemoryStore::Store.new(cache: :memory_store, redis: url, channel: channel, health_timeout: 0.2,
                                           health_interval: 0.05, reconnect_max: 0.2)
      stores << cache
      cache.wait_for_connection
      cache.write("k", "v")
      # Set after the write: the store's own instrumentation logs with it too,
      # and ActiveSupport 7.2's needs core extensions this spec does not load.
      log = StringIO.new
      previous_logger = ActiveSupport::Cache::Store.logger
      ActiveSupport::Cache::Store.logger = Logger.new(log)

      eventually(message: "the held-back change was never reported") { events.any? }
      expect(events.first[:waited]).to be > 0.4 # reconnect_max + health_timeout
      expect(events.first[:cause]).to include("changes queued here not published for").and include("NOPERM")
      expect(cache.stats[:last_error]).to eq(events.first[:cause])
      expect(cache.stats).to include(connected: true, trusted: true, published: 0)
      eventually(message: "no log line") { log.string.include?("synced_memory_store: on redis:") }
      expect(log.string).to include("changes queued here not published for")

      bus_user("+publish")
      eventually(message: "the change never went out once PUBLISH was allowed") do
        cache.stats.values_at(:published, :queued, :pending) in [1.., 0, 0]
      end
      eventually(message: "the report outlived the stall") { cache.stats[:last_error].nil? }
      expect(events.size).to eq(1)
    ensure
      ActiveSupport::Notifications.unsubscribe(subscription) if subscription
      ActiveSupport::Cache::Store.logger = previous_logger if log
    end
  end

  describe "on a database other than 0" do
    it "also needs SELECT, and says so" do
      bus_user(*minimal_permissions)
      expect(refusal(url(db: 1))).to include("refused to switch to database 1").and include("needs SELECT")
    end

    it "connects with SELECT" do
      bus_user(*minimal_permissions, "+select")
      expect(store(url(db: 1))).to be_connected
    end
  end
end
