# sidekiq_bench.rb - Sidekiq no-op jobs, for the side-by-side in BENCHMARKS.md.
#
#   ruby sidekiq_bench.rb load  PORT N     push N jobs (push_bulk, 1000 per call)
#   ruby sidekiq_bench.rb wait  PORT N     poll the completion counter; print the result
#   sidekiq -r sidekiq_bench.rb -c C       the worker process (REDIS_URL set)
#
# Completions are counted in each worker process and added to one Redis key
# every 10 ms by a background thread, so the count costs the jobs nothing
# measurable; the waiter times the first to the last completion.
require 'sidekiq'

# redis-rb 4.8 warns on every SADD of Sidekiq 6.4's push; keep the old answer quietly.
Redis.sadd_returns_boolean = false if Redis.respond_to?(:sadd_returns_boolean=)

class NoopJob
  include Sidekiq::Worker
  sidekiq_options retry: false, backtrace: false

  @count = 0
  @lock = Mutex.new
  class << self
    attr_reader :lock
    attr_accessor :count
  end

  def perform(*)
    NoopJob.lock.synchronize { NoopJob.count += 1 }
  end
end

if Sidekiq.server?
  Thread.new do
    redis = Redis.new(url: ENV.fetch('REDIS_URL'))
    loop do
      sleep 0.01
      n = NoopJob.lock.synchronize { c = NoopJob.count; NoopJob.count = 0; c }
      redis.incrby('bench:done', n) if n > 0
    end
  end
end

if $PROGRAM_NAME == __FILE__
  mode, port, n = ARGV[0], ARGV[1].to_i, ARGV[2].to_i
  url = "redis://127.0.0.1:#{port}/0"
  Sidekiq.configure_client { |c| c.redis = { url: url } }
  redis = Redis.new(url: url)
  case mode
  when 'load'
    redis.del('bench:done')
    t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    (n / 1000.0).ceil.times do |i|
      k = [1000, n - i * 1000].min
      Sidekiq::Client.push_bulk('class' => NoopJob, 'args' => Array.new(k) { [] })
    end
    warn format('pushed %d jobs in %.2f s', n, Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0)
  when 'wait'
    first = nil
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 300
    loop do
      now = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      done = redis.get('bench:done').to_i
      first ||= now if done > 0
      if done >= n
        span = now - first
        puts format('peer system=sidekiq mode=drain jobs=%d seconds=%.3f jobs_per_s=%.0f settings=%s',
                    done, span, done / span, ENV.fetch('SETTINGS', ''))
        break
      end
      abort "sidekiq_bench: only #{done} of #{n} jobs done" if now > deadline
      sleep 0.005
    end
  end
end
