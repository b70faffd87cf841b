# frozen_string_literal: true

# The ActiveSupport::Notifications events each operation publishes, exactly as
# the loaded ActiveSupport's MemoryStore publishes them (where versions differ,
# CacheStoreContract::Versions says how). Event lists are in the order
# subscribers receive them: when one instrumented operation runs inside
# another, the inner one finishes, and is delivered, first.
RSpec.shared_examples "an ActiveSupport cache store: instrumentation" do
  describe "instrumentation" do
    let(:store_name) { cache.class.name }

    describe "#read" do
      it "publishes cache_read with the name, the store class and hit: true on a hit" do
        cache.write("key", "value")

        events = cache_events { cache.read("key") }

        expect(event_names(events)).to eq(["cache_read.active_support"])
        expect(events.first.payload).to include(key: event_key("key"), store: store_name, hit: true)
        expect(events.first.payload).not_to include(:super_operation)
      end

      it "publishes cache_read with hit: false on a miss" do
        events = cache_events { cache.read("missing") }

        expect(event_names(events)).to eq(["cache_read.active_support"])
        expect(events.first.payload).to include(key: event_key("missing"), store: store_name, hit: false)
      end

      it "publishes hit: false for an expired entry and for a version mismatch" do
        travel_to Time.at(1_700_000_000)
        cache.write("expiring", "value", expires_in: 60)
        cache.write("versioned", "value", version: 1)
        travel_to Time.at(1_700_000_061)

        events = cache_events do
          cache.read("expiring")
          cache.read("versioned", version: 2)
        end

        expect(events.map { |event| event.payload[:hit] }).to eq([false, false])
      end

      it "publishes the original name object as :key (ActiveSupport 7.2+: its normalized key)" do
        model = CacheStoreContract::KeyedModel.new("model/1")

        events = cache_events { cache.read(model) }

        if CacheStoreContract::Versions::NORMALIZED_EVENT_KEYS
          expect(events.first.payload[:key]).to eq(event_key(model))
        else
          expect(events.first.payload[:key]).to equal(model)
        end
      end
    end

    describe "#fetch" do
      it "publishes cache_read (super_operation: :fetch, hit: true) then cache_fetch_hit on a hit" do
        cache.write("key", "value")

        events = cache_events { cache.fetch("key") { |_name| "generated" } }

        expect(event_names(events)).to eq(%w[cache_read.active_support cache_fetch_hit.active_support])
        expect(events.first.payload).to include(key: event_key("key"), store: store_name, super_operation: :fetch,
                                                hit: true)
        expect(events.last.payload).to include(key: "key", store: store_name)
      end

      it "publishes cache_read (hit: false), cache_generate and cache_write, in that order, on a miss" do
        events = cache_events { cache.fetch("key") { |_name| "generated" } }

        expect(event_names(events)).to eq(
          %w[cache_read.active_support cache_generate.active_support cache_write.active_support]
        )
        expect(events[0].payload).to include(key: event_key("key"), store: store_name, super_operation: :fetch,
                                             hit: false)
        expect(events[1].payload).to include(key: event_key("key"), store: store_name)
        expect(events[2].payload).to include(key: event_key("key"), store: store_name)
      end

      it "publishes a plain cache_read, without super_operation, when called without a block" do
        events = cache_events { cache.fetch("key") }

        expect(event_names(events)).to eq(["cache_read.active_support"])
        expect(events.first.payload).to include(key: event_key("key"), hit: false)
        expect(events.first.payload).not_to include(:super_operation)
      end
    end

    describe "#write" do
      it "publishes cache_write with the name, the store class and the call's options" do
        events = cache_events { cache.write("key", "value", expires_in: 60) }

        expect(event_names(events)).to eq(["cache_write.active_support"])
        expect(events.first.payload).to include(key: event_key("key"), store: store_name, expires_in: 60)
      end
    end

    describe "#delete" do
      it "publishes cache_delete with the name and the store class" do
        cache.write("key", "value")

        events = cache_events { cache.delete("key") }

        expect(event_names(events)).to eq(["cache_delete.active_support"])
        expect(events.first.payload).to include(key: event_key("key"), store: store_name)
      end
    end

    describe "#exist?" do
      it "publishes cache_exist? with the name and the store class" do
        events = cache_events { cache.exist?("key") }

        expect(event_names(events)).to eq(["cache_exist?.active_support"])
        expect(events.first.payload).to include(key: event_key("key"), store: store_name)
      end
    end

    describe "#read_multi" do
      it "publishes one cache_read_multi with the names as :key and the names that hit as :hits" do
        cache.write("hit", "value")

        events = cache_events { cache.read_multi("miss", "hit") }

        expect(event_names(events)).to eq(["cache_read_multi.active_support"])
        expect(events.first.payload).to include(key: %w[miss hit], hits: ["hit"], store: store_name)
        expect(events.first.payload).not_to include(:super_operation)
      end
    end

    describe "#write_multi" do
      it "publishes one cache_write_multi with the name => value Hash as :key" do
        events = cache_events { cache.write_multi({ "foo" => "bar", "egg" => "spam" }) }

        expect(event_names(events)).to eq(["cache_write_multi.active_support"])
        expect(events.first.payload).to include(key: { "foo" => "bar", "egg" => "spam" }, store: store_name)
        expect(events.first.payload).not_to include(:super_operation)
      end
    end

    describe "#fetch_multi" do
      it "publishes cache_read_multi (super_operation: :fetch_multi) and a cache_write_multi of the generated values" do
        cache.write("hit", "value")

        events = cache_events { cache.fetch_multi("miss", "hit") { |name| name * 2 } }

        read, write = events.partition { |event| event.name == "cache_read_multi.active_support" }.map(&:first)
        writes_after = CacheStoreContract::Versions::FETCH_MULTI_WRITES_AFTER_READ
        expect(events).to eq(writes_after ? [read, write] : [write, read])
        expect(write.payload).to include(key: { "miss" => "missmiss" }, store: store_name)
        expect(read.payload).to include(key: %w[miss hit], hits: ["hit"], super_operation: :fetch_multi,
                                        store: store_name)
      end

      it "publishes a cache_write_multi with an empty Hash when every name hits (ActiveSupport 7.1+: nothing)" do
        cache.write("hit", "value")

        events = cache_events { cache.fetch_multi("hit") { "generated" } }

        if CacheStoreContract::Versions::EMPTY_MULTI_PUBLISHES
          expect(event_names(events)).to eq(%w[cache_write_multi.active_support cache_read_multi.active_support])
          expect(events.first.payload).to include(key: {})
        else
          expect(event_names(events)).to eq(%w[cache_read_multi.active_support])
        end
        expect(events.last.payload).to include(key: ["hit"], hits: ["hit"], super_operation: :fetch_multi)
      end
    end

    describe "#delete_multi" do
      it "publishes one cache_delete_multi with one (store-normalized) key per name" do
        events = cache_events { cache.delete_multi(%w[foo bar]) }

        expect(event_names(events)).to eq(["cache_delete_multi.active_support"])
        expect(events.first.payload).to include(store: store_name)
        expect(events.first.payload[:key]).to be_an(Array).and(have_attributes(size: 2))
      end
    end

    describe "#delete_matched" do
      it "publishes cache_delete_matched with the inspected matcher as :key" do
        events = cache_events { cache.delete_matched(/^foo/) }

        expect(event_names(events)).to eq(["cache_delete_matched.active_support"])
        expect(events.first.payload).to include(key: "/^foo/", store: store_name)
      end
    end

    # ActiveSupport 6.1 and 7.0's MemoryStore reports a counter change as the
    # read and write it performs, 7.1 and 7.2's publishes nothing for it, and
    # 8.0's (like RedisCacheStore, and this gem's store on every version) one
    # cache_increment/cache_decrement event with the amount.
    describe "#increment and #decrement" do
      it "publish one counter event each, or what the version's MemoryStore publishes" do
        cache.write("counter", 1, raw: true)

        events = cache_events do
          cache.increment("counter")
          cache.decrement("counter", 2)
        end

        if event_names(events).include?("cache_increment.active_support")
          expect(event_names(events)).to eq(%w[cache_increment.active_support cache_decrement.active_support])
          expect(events.map { |event| event.payload[:amount] }).to eq([1, 2])
          expect(events.map { |event| event.payload[:key].to_s }).to all(end_with("counter"))
        elsif CacheStoreContract::Versions::COUNTER_READ_WRITE_EVENTS
          expect(event_names(events)).to eq(%w[cache_read.active_support cache_write.active_support] * 2)
          expect(events.map { |event| event.payload[:key] }).to all(eq("counter"))
        else
          expect(CacheStoreContract::Versions::COUNTER_EVENTS_EVERYWHERE).to be(false)
          expect(events).to be_empty
        end
      end

      it "publish a single event when a missing key stays missing" do
        events = cache_events { cache.increment("missing") }

        if cache.exist?("missing", raw: true)
          # The start-from-zero alternative (see "on a missing key" above).
          expect(events.map { |event| event.payload[:store] }).to include(store_name)
        elsif event_names(events) == ["cache_increment.active_support"]
          expect(events.first.payload).to include(amount: 1)
        else
          expect(event_names(events)).to eq(["cache_read.active_support"])
          expect(events.first.payload).to include(key: "missing", hit: false)
        end
      end
    end

    describe "#cleanup" do
      if metadata.fetch(:instruments_cleanup, true)
        it "publishes cache_cleanup with the number of entries held before cleaning up (size:)" do
          travel_to Time.at(1_700_000_000)
          cache.write("expiring", "value", expires_in: 60)
          cache.write("forever", "value")
          travel_to Time.at(1_700_000_061)

          events = cache_events { cache.cleanup }

          expect(event_names(events)).to eq(["cache_cleanup.active_support"])
          # 7.1+ put size: in the payload; before, the Hash was the event's key.
          size = CacheStoreContract::Versions::KEYLESS_EVENTS ? { size: 2 } : { key: { size: 2 } }
          expect(events.first.payload).to include(store: store_name, **size)
        end
      end
    end

    describe "#clear" do
      it "publishes no event" do
        cache.write("key", "value")

        events = cache_events { cache.clear }

        expect(events).to be_empty
      end
    end
  end
end
