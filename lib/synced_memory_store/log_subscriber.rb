# frozen_string_literal: true

require "active_support/log_subscriber"

module SyncedMemoryStore
  # Writes one line to the log for each bus event (see BusEvents): in Rails to
  # Rails.logger, elsewhere to ActiveSupport::Cache::Store.logger when one is
  # set. Without a logger, what needs attention (a lost bus, rejected
  # messages) still goes out as a Ruby warning.
  class LogSubscriber < ActiveSupport::LogSubscriber
    # The first subscription is up.
    def connected(event)
      info { "synced_memory_store: connected to #{event.payload[:store]}" }
    end

    # The subscription is back; L1 was dropped, or kept with what the
    # channel's log held of the messages missed.
    def resubscribed(event)
      info do
        outcome = if event.payload[:l1_dropped]
                    "in-memory entries dropped, as messages may have been missed"
                  else
                    "in-memory entries kept: the missed messages were replayed from the channel's log"
                  end
        "synced_memory_store: resubscribed to #{event.payload[:store]} " \
          "(reconnect #{event.payload[:reconnects]}); #{outcome}"
      end
    end

    # The subscription was lost or could not be made.
    def disconnected(event)
      warning do
        "synced_memory_store: not subscribed to #{event.payload[:store]}: #{event.payload[:cause]}; " \
          "reads go to the second level until it is back"
      end
    end

    # Messages were rejected.
    def rejected(event)
      payload = event.payload
      warning do
        dropped = payload[:missed] ? "; in-memory entries dropped, as they may have carried changes" : ""
        "synced_memory_store: rejected #{payload[:count]} message(s) on #{payload[:store]}: " \
          "#{payload[:description]}#{dropped}"
      end
    end

    # Changes queued here have not been published for longer than a healthy
    # publisher takes.
    def unpublished(event)
      warning { "synced_memory_store: on #{event.payload[:store]}: #{event.payload[:cause]}" }
    end

    def logger
      super || ActiveSupport::Cache::Store.logger
    end

    private

    def info(&)
      logger&.info(&)
    end

    def warning(&message)
      logger ? logger.warn(&message) : Kernel.warn(message.call)
    end
  end
end

SyncedMemoryStore::LogSubscriber.attach_to :synced_memory_store
