# frozen_string_literal: true

# Puma in cluster mode, as production runs it: two workers forked from a master
# that loaded the application first (so Rails.cache, the SyncedMemoryStore, is
# created before the fork and each worker must get its own bus threads).
workers 2
threads 1, 2
preload_app!
bind "tcp://127.0.0.1:#{ENV.fetch("PORT")}"
rackup File.expand_path("../config.ru", __dir__)
