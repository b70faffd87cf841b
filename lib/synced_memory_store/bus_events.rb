# frozen_string_literal: true

require "active_support/notifications"
require "weakref"

module SyncedMemoryStore
  # Publishes what a store's bus goes through as ActiveSupport::Notifications
  # events, from one Ruby thread per store that waits for them without the
  # GVL (the bus threads cannot call Ruby):
  #
  # - <tt>connected.synced_memory_store</tt>: the first subscription is up;
  # - <tt>disconnected.synced_memory_store</tt> (<tt>cause:</tt>): it was
  #   lost, or could not be made; reads go to L2 meanwhile;
  # - <tt>resubscribed.synced_memory_store</tt> (<tt>reconnects:</tt>,
  #   <tt>l1_dropped:</tt>): it is back; L1 was dropped, since messages
  #   may have been missed, unless the channel's log (+bus_log:+) held them
  #   (<tt>l1_dropped: false</tt>);
  # - <tt>rejected.synced_memory_store</tt> (<tt>cause:</tt>,
  #   <tt>description:</tt>, <tt>missed:</tt>, <tt>count:</tt>): messages were
  #   rejected; at most one event per cause a minute, counting the rest;
  #   <tt>missed: true</tt> when they may have carried changes, so L1 was
  #   dropped;
  # - <tt>unpublished.synced_memory_store</tt> (<tt>cause:</tt>,
  #   <tt>waited:</tt>, seconds): changes queued here have not been published for
  #   longer than a healthy publisher takes (a refused PUBLISH, a stuck
  #   publisher): other processes may still hold the values they replace;
  #   once per stall.
  #
  # Every payload also has <tt>store:</tt> (the store's inspect-safe bus
  # description). SyncedMemoryStore::LogSubscriber writes each to the log.
  class BusEvents
    # Longest one wait without the GVL, so that the thread notices a close.
    WAIT = 1.0

    NAMES = Hash.new { |names, name| names[name] = "#{name}.synced_memory_store".freeze }
    private_constant :NAMES

    # Starts publishing the events of +node+ (a SyncedMemoryStore::Node with a
    # bus), describing the store as +bus+. The node is held weakly between
    # waits: a store dropped without #close is still collected, and its bus
    # threads stop.
    def initialize(node, bus)
      @node = WeakRef.new(node)
      @bus = bus
      @thread = Thread.new { run }
      @thread.name = "synced_memory_store events"
      @thread.report_on_exception = false
    end

    # Stops publishing (the node's close ends the wait at once); waits up to
    # +timeout+ seconds for the thread.
    def stop(timeout = WAIT)
      @stopped = true
      @thread.join(timeout)
    end

    private

    def run
      until @stopped
        events = live_node&.wait_events(WAIT) or break
        events.each do |(name, payload)|
          ActiveSupport::Notifications.instrument(NAMES[name], payload.merge(store: @bus))
        end
      end
    rescue StandardError
      # A subscriber that raised must not end the publishing for good.
      retry unless @stopped
    end

    # The node, unless it was collected or closed.
    def live_node
      node = @node.__getobj__
      node unless node.closed?
    rescue WeakRef::RefError
      nil
    end
  end
end
