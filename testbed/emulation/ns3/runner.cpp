// The task-graph executor of the ns-3 backend (testbed/emulation/ns3), compiled at run time
// by cppyy's cling. It does what testbed/emulation/worker.py does on each Mininet host, inside
// one ns-3 simulation: per device a FIFO compute queue (a computation lasts its simulated
// service time), one persistent TCP connection per (source, destination, channel) sending
// its messages one after another, out-of-band signals (instantaneous), marks at their
// earliest start. A task runs when all its dependency events happened on its device.
//
// Network: point-to-point links (one DataRate per direction, a Delay) for wired links;
// 802.11 BSSs (an access point and its stations on one YansWifiChannel) for media. IPv4 with
// global (shortest-path) routing. Capacity changes of wired links are replayed from t0.
// Times are recorded in seconds from t0 (the end of the warm-up).

#include "ns3/core-module.h"
#include "ns3/internet-module.h"
#include "ns3/mobility-module.h"
#include "ns3/network-module.h"
#include "ns3/point-to-point-module.h"
#include "ns3/wifi-module.h"

#include <deque>
#include <map>
#include <string>
#include <vector>

namespace testbed_ns3
{
using namespace ns3;

enum Op { MARK = 0, COMPUTE = 1, SEND = 2, SIGNAL = 3 };

struct Task
{
    int device;
    int op;
    double duration_s;
    int dst;
    uint64_t size_bytes;
    int conn;
    int xfer;
    int signal;
    double not_before_s;
    int done_event;
    int pending = 0;
};

struct Connection
{
    int src;
    int dst;
    uint16_t port;
    Ptr<Socket> socket;
    std::deque<std::pair<int, double>> queue;  // (task, ready time)
    bool busy = false;
    bool pushing = false;
    bool again = false;
    int current = -1;
    uint64_t to_write = 0;
    double ready_s = 0;
    double start_s = 0;
    uint64_t sent_total = 0;
    uint64_t received_total = 0;
    std::deque<std::pair<int, uint64_t>> expected;  // (xfer or -1 warm-up, stream end offset)
};

struct RateChange
{
    Ptr<PointToPointNetDevice> device;
    double at_s;
    double bps;
};

class Runner
{
  public:
    // ------------------------------------------------------------------ network
    int AddNode()
    {
        Ptr<Node> node = CreateObject<Node>();
        m_nodes.Add(node);
        return static_cast<int>(m_nodes.GetN()) - 1;
    }

    void AddP2P(int a, int b, double bps_ab, double bps_ba, double delay_s, int queue_packets)
    {
        PointToPointHelper p2p;
        p2p.SetChannelAttribute("Delay", TimeValue(Seconds(delay_s)));
        p2p.SetQueue("ns3::DropTailQueue<Packet>", "MaxSize",
                     QueueSizeValue(QueueSize(std::to_string(queue_packets) + "p")));
        NetDeviceContainer devices = p2p.Install(m_nodes.Get(a), m_nodes.Get(b));
        Ptr<PointToPointNetDevice> da = DynamicCast<PointToPointNetDevice>(devices.Get(0));
        Ptr<PointToPointNetDevice> db = DynamicCast<PointToPointNetDevice>(devices.Get(1));
        da->SetDataRate(DataRate(static_cast<uint64_t>(bps_ab)));
        db->SetDataRate(DataRate(static_cast<uint64_t>(bps_ba)));
        m_p2p[{a, b}] = da;
        m_p2p[{b, a}] = db;
        m_subnets.push_back(devices);
    }

    // One BSS: ``ap`` and ``stations`` on their own channel, every station ``distance_m``
    // from the access point. ``standard``: "80211n", "80211ac", "80211ax".
    void AddBss(int ap, const std::vector<int>& stations, const std::string& standard,
                const std::string& channel_settings, const std::string& data_mode,
                bool short_guard, double distance_m, uint32_t max_ampdu_bytes,
                const std::string& ssid_name, int spatial_streams, int guard_ns)
    {
        WifiHelper wifi;
        if (standard == "80211n")
            wifi.SetStandard(WIFI_STANDARD_80211n);
        else if (standard == "80211ax")
            wifi.SetStandard(WIFI_STANDARD_80211ax);
        else
            wifi.SetStandard(WIFI_STANDARD_80211ac);
        if (data_mode.empty())
            wifi.SetRemoteStationManager("ns3::IdealWifiManager");
        else
            wifi.SetRemoteStationManager("ns3::ConstantRateWifiManager", "DataMode",
                                         StringValue(data_mode));
        if (standard != "80211ax")
            wifi.ConfigHtOptions("ShortGuardIntervalSupported", BooleanValue(short_guard));
        else
            wifi.ConfigHeOptions("GuardInterval", TimeValue(NanoSeconds(guard_ns)));
        YansWifiChannelHelper channel = YansWifiChannelHelper::Default();
        YansWifiPhyHelper phy;
        phy.SetChannel(channel.Create());
        phy.Set("ChannelSettings", StringValue(channel_settings));
        phy.Set("Antennas", UintegerValue(spatial_streams));
        phy.Set("MaxSupportedTxSpatialStreams", UintegerValue(spatial_streams));
        phy.Set("MaxSupportedRxSpatialStreams", UintegerValue(spatial_streams));
        WifiMacHelper mac;
        Ssid ssid(ssid_name);
        NodeContainer stas;
        for (int s : stations)
            stas.Add(m_nodes.Get(s));
        mac.SetType("ns3::StaWifiMac", "Ssid", SsidValue(ssid), "BE_MaxAmpduSize",
                    UintegerValue(max_ampdu_bytes));
        NetDeviceContainer staDevices = wifi.Install(phy, mac, stas);
        mac.SetType("ns3::ApWifiMac", "Ssid", SsidValue(ssid), "BE_MaxAmpduSize",
                    UintegerValue(max_ampdu_bytes));
        NetDeviceContainer apDevice = wifi.Install(phy, mac, m_nodes.Get(ap));
        MobilityHelper mobility;
        Ptr<ListPositionAllocator> positions = CreateObject<ListPositionAllocator>();
        positions->Add(Vector(0.0, 0.0, 0.0));
        const double pi = 3.141592653589793;
        for (size_t k = 0; k < stations.size(); ++k)
        {
            double angle = 2 * pi * k / stations.size();
            positions->Add(Vector(distance_m * std::cos(angle), distance_m * std::sin(angle), 0));
        }
        mobility.SetPositionAllocator(positions);
        mobility.SetMobilityModel("ns3::ConstantPositionMobilityModel");
        NodeContainer all;
        all.Add(m_nodes.Get(ap));
        all.Add(stas);
        mobility.Install(all);
        NetDeviceContainer devices;
        devices.Add(apDevice);
        devices.Add(staDevices);
        m_subnets.push_back(devices);
    }

    void ChangeRate(int a, int b, double at_s, double bps)
    {
        m_changes.push_back({m_p2p.at({a, b}), at_s, bps});
    }

    void SetRngRun(uint64_t run) { RngSeedManager::SetRun(run); }

    void SetTcp(uint32_t segment_bytes, uint32_t buffer_bytes, uint32_t initial_cwnd,
                const std::string& congestion)
    {
        Config::SetDefault("ns3::TcpSocket::SegmentSize", UintegerValue(segment_bytes));
        Config::SetDefault("ns3::TcpSocket::SndBufSize", UintegerValue(buffer_bytes));
        Config::SetDefault("ns3::TcpSocket::RcvBufSize", UintegerValue(buffer_bytes));
        Config::SetDefault("ns3::TcpSocket::InitialCwnd", UintegerValue(initial_cwnd));
        Config::SetDefault("ns3::TcpL4Protocol::SocketType",
                           TypeIdValue(TypeId::LookupByName(congestion)));
    }

    void Build()
    {
        Ipv4AddressGenerator::Reset();
        InternetStackHelper stack;
        stack.Install(m_nodes);
        Ipv4AddressHelper address;
        for (size_t k = 0; k < m_subnets.size(); ++k)
        {
            std::string base = "10." + std::to_string(1 + k / 256) + "." +
                               std::to_string(k % 256) + ".0";
            address.SetBase(base.c_str(), "255.255.255.0");
            address.Assign(m_subnets[k]);
        }
        Ipv4GlobalRoutingHelper::PopulateRoutingTables();
    }

    // ------------------------------------------------------------------ plan
    int AddConnection(int src, int dst)
    {
        Connection c;
        c.src = src;
        c.dst = dst;
        c.port = static_cast<uint16_t>(40000 + m_conns.size());
        m_conns.push_back(c);
        return static_cast<int>(m_conns.size()) - 1;
    }

    void AddTask(int device, int op, double duration_s, int dst, uint64_t size_bytes, int conn,
                 int xfer, int signal, double not_before_s, int done_event)
    {
        Task t{device, op, duration_s, dst, size_bytes, conn, xfer, signal, not_before_s,
               done_event};
        m_tasks.push_back(t);
    }

    void AddDependency(int task, int event)
    {
        if (static_cast<int>(m_waiters.size()) <= event)
            m_waiters.resize(event + 1);
        m_waiters[event].push_back(task);
        m_tasks[task].pending += 1;
    }

    void SetEvents(int n_events, const std::vector<int>& xfer_event,
                   const std::vector<int>& signal_event)
    {
        m_waiters.resize(std::max<size_t>(m_waiters.size(), n_events));
        m_happened.assign(n_events, false);
        m_xfer_event = xfer_event;
        m_signal_event = signal_event;
        m_arrival_s.assign(xfer_event.size(), -1.0);
    }

    // Connect every connection, send ``warm_bytes`` on each, start at ``settle_s`` after the
    // last warm-up arrived (or at ``start_at_s`` if later); run until ``stop_s`` after t0.
    // Returns t0 (simulated seconds).
    double Run(uint32_t warm_bytes, double connect_at_s, double settle_s, double stop_s)
    {
        m_warm_bytes = warm_bytes;
        m_settle_s = settle_s;
        m_stop_s = stop_s;
        m_compute_busy.assign(m_nodes.GetN(), false);
        m_compute_queue.assign(m_nodes.GetN(), {});
        m_task_ready.assign(m_tasks.size(), 0.0);
        m_task_start.assign(m_tasks.size(), -1.0);
        m_task_end.assign(m_tasks.size(), -1.0);
        for (size_t k = 0; k < m_conns.size(); ++k)
        {
            Connection& c = m_conns[k];
            Ptr<Socket> sink = Socket::CreateSocket(m_nodes.Get(c.dst),
                                                    TcpSocketFactory::GetTypeId());
            sink->Bind(InetSocketAddress(Ipv4Address::GetAny(), c.port));
            sink->Listen();
            sink->SetAcceptCallback(MakeNullCallback<bool, Ptr<Socket>, const Address&>(),
                                    MakeCallback(&Runner::Accepted, this));
            m_listeners.push_back(sink);
        }
        Simulator::Schedule(Seconds(connect_at_s), &Runner::Connect, this);
        Simulator::Run();
        m_ended_s = Simulator::Now().GetSeconds() - m_t0;
        Simulator::Destroy();
        return m_t0;
    }

    std::string Error() const { return m_error; }
    double TaskReady(int t) const { return m_task_ready[t]; }
    double TaskStart(int t) const { return m_task_start[t]; }
    double TaskEnd(int t) const { return m_task_end[t]; }
    double Arrival(int x) const { return m_arrival_s[x]; }
    double WarmDone() const { return m_warm_done_s; }
    int Left() const { return m_left; }
    double EndedAt() const { return m_ended_s; }

  private:
    void Connect()
    {
        for (size_t k = 0; k < m_conns.size(); ++k)
        {
            Connection& c = m_conns[k];
            c.socket = Socket::CreateSocket(m_nodes.Get(c.src), TcpSocketFactory::GetTypeId());
            c.socket->Bind();
            Ptr<Ipv4> ipv4 = m_nodes.Get(c.dst)->GetObject<Ipv4>();
            Ipv4Address to = ipv4->GetAddress(1, 0).GetLocal();
            c.socket->Connect(InetSocketAddress(to, c.port));
            c.socket->SetSendCallback(MakeBoundCallback(&Runner::SendSpace, this, (int)k));
            if (m_warm_bytes == 0)
                continue;  // cold connections: open (handshake) but nothing sent
            // the warm-up message (xfer -1) goes first on every connection
            c.expected.push_back({-1, c.sent_total + m_warm_bytes});
            c.sent_total += m_warm_bytes;
            c.to_write = m_warm_bytes;
            c.busy = true;
            c.current = -1;
            m_warm_left += 1;
        }
        if (m_conns.empty() || m_warm_bytes == 0)
            Simulator::Schedule(Seconds(m_settle_s), &Runner::Go, this);
    }

    void Accepted(Ptr<Socket> socket, const Address& from)
    {
        // the listener is not passed; find the connection by the local port
        Address local;
        socket->GetSockName(local);
        uint16_t port = InetSocketAddress::ConvertFrom(local).GetPort();
        int k = port - 40000;
        m_recv_conn[PeekPointer(socket)] = k;
        socket->SetRecvCallback(MakeCallback(&Runner::Received, this));
    }

    static void SendSpace(Runner* self, int k, Ptr<Socket> socket, uint32_t available)
    {
        self->Push(k);
    }

    // Write the current message into the socket as far as its buffer allows; when it is all
    // written (the worker's sendall returned) the send task is done and the next message
    // starts. Socket calls may call back into Push (SendSpace): a nested call only asks
    // the running one to go round again.
    void Push(int k)
    {
        Connection& c = m_conns[k];
        if (c.pushing)
        {
            c.again = true;
            return;
        }
        c.pushing = true;
        do
        {
            c.again = false;
            while (c.busy && c.to_write > 0)
            {
                uint32_t space = c.socket->GetTxAvailable();
                if (space == 0)
                    break;
                uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(c.to_write, space));
                int sent = c.socket->Send(Create<Packet>(n));
                if (sent <= 0)
                    break;
                c.to_write -= std::min<uint64_t>(c.to_write, static_cast<uint64_t>(sent));
            }
            if (c.busy && c.to_write == 0)
            {
                c.busy = false;
                if (c.current >= 0)
                {
                    int t = c.current;
                    m_task_start[t] = c.start_s;
                    m_task_end[t] = Now();
                    Simulator::ScheduleNow(&Runner::Done, this, t);
                }
                c.again = StartNext(k);
            }
        } while (c.again);
        c.pushing = false;
    }

    void NextMessage(int k)
    {
        if (StartNext(k))
            Push(k);
    }

    // Take the next queued message as the current one (true if one was started).
    bool StartNext(int k)
    {
        Connection& c = m_conns[k];
        if (c.busy || c.queue.empty())
            return false;
        auto [t, ready] = c.queue.front();
        c.queue.pop_front();
        const Task& task = m_tasks[t];
        uint64_t size = std::max<uint64_t>(task.size_bytes, 12);  // the worker's header
        c.busy = true;
        c.current = t;
        c.to_write = size;
        c.start_s = Now();
        c.sent_total += size;
        c.expected.push_back({task.xfer, c.sent_total});
        return true;
    }

    void Received(Ptr<Socket> socket)
    {
        int k = m_recv_conn.at(PeekPointer(socket));
        Connection& c = m_conns[k];
        Ptr<Packet> packet;
        while ((packet = socket->Recv()))
            c.received_total += packet->GetSize();
        while (!c.expected.empty() && c.expected.front().second <= c.received_total)
        {
            int xfer = c.expected.front().first;
            c.expected.pop_front();
            if (xfer < 0)
            {
                m_warm_left -= 1;
                if (m_warm_left == 0)
                {
                    m_warm_done_s = Simulator::Now().GetSeconds();
                    Simulator::Schedule(Seconds(m_settle_s), &Runner::Go, this);
                }
                continue;
            }
            m_arrival_s[xfer] = Now();
            m_left -= 1;
            Happen(m_xfer_event[xfer]);
        }
    }

    double Now() const { return Simulator::Now().GetSeconds() - m_t0; }

    void Go()
    {
        m_t0 = Simulator::Now().GetSeconds();
        m_left = static_cast<int>(m_tasks.size()) + static_cast<int>(m_xfer_event.size());
        for (const RateChange& change : m_changes)
            Simulator::Schedule(Seconds(change.at_s), &Runner::SetRate, this, change.device,
                                change.bps);
        // collect first: dispatching one may make others ready (and dispatch them)
        std::vector<int> ready;
        for (size_t t = 0; t < m_tasks.size(); ++t)
            if (m_tasks[t].pending == 0)
                ready.push_back(static_cast<int>(t));
        for (int t : ready)
            Dispatch(t);
        Simulator::Schedule(Seconds(m_stop_s), &Runner::Stop, this);
    }

    void SetRate(Ptr<PointToPointNetDevice> device, double bps)
    {
        device->SetDataRate(DataRate(static_cast<uint64_t>(bps)));
    }

    void Stop()
    {
        if (m_left > 0)
            m_error = "the plan did not finish within the deadline (" +
                      std::to_string(m_left) + " tasks or transfers left)";
        Simulator::Stop();
    }

    void Happen(int event)
    {
        if (m_happened[event])
            return;
        m_happened[event] = true;
        for (int t : m_waiters[event])
        {
            m_tasks[t].pending -= 1;
            if (m_tasks[t].pending == 0)
                Dispatch(t);
        }
    }

    void Dispatch(int t)
    {
        Task& task = m_tasks[t];
        m_task_ready[t] = Now();
        switch (task.op)
        {
        case COMPUTE:
            m_compute_queue[task.device].push_back(t);
            RunCompute(task.device);
            break;
        case SEND:
            m_conns[task.conn].queue.push_back({t, Now()});
            NextMessage(task.conn);
            break;
        case SIGNAL:
            m_task_start[t] = m_task_end[t] = Now();
            Happen(m_signal_event[task.signal]);
            Done(t);
            break;
        case MARK: {
            double wait = task.not_before_s - Now();
            if (wait > 0)
                Simulator::Schedule(Seconds(wait), &Runner::Mark, this, t);
            else
                Mark(t);
            break;
        }
        }
    }

    void Mark(int t)
    {
        m_task_start[t] = m_task_end[t] = Now();
        Done(t);
    }

    void RunCompute(int device)
    {
        if (m_compute_busy[device] || m_compute_queue[device].empty())
            return;
        int t = m_compute_queue[device].front();
        m_compute_queue[device].pop_front();
        m_compute_busy[device] = true;
        m_task_start[t] = Now();
        Simulator::Schedule(Seconds(m_tasks[t].duration_s), &Runner::ComputeDone, this, t);
    }

    void ComputeDone(int t)
    {
        m_task_end[t] = Now();
        int device = m_tasks[t].device;
        m_compute_busy[device] = false;
        Done(t);
        RunCompute(device);
    }

    void Done(int t)
    {
        m_left -= 1;
        Happen(m_tasks[t].done_event);
        if (m_left == 0)
            Simulator::Stop();
    }

    NodeContainer m_nodes;
    std::vector<NetDeviceContainer> m_subnets;
    std::map<std::pair<int, int>, Ptr<PointToPointNetDevice>> m_p2p;
    std::vector<RateChange> m_changes;
    std::vector<Connection> m_conns;
    std::vector<Ptr<Socket>> m_listeners;
    std::map<Socket*, int> m_recv_conn;
    std::vector<Task> m_tasks;
    std::vector<std::vector<int>> m_waiters;
    std::vector<bool> m_happened;
    std::vector<int> m_xfer_event, m_signal_event;
    std::vector<double> m_arrival_s, m_task_ready, m_task_start, m_task_end;
    std::vector<bool> m_compute_busy;
    std::vector<std::deque<int>> m_compute_queue;
    uint32_t m_warm_bytes = 0;
    int m_warm_left = 0;
    double m_warm_done_s = -1;
    double m_settle_s = 0.1, m_stop_s = 60.0;
    double m_t0 = 0;
    double m_ended_s = -1;
    int m_left = 1;
    std::string m_error;
};

} // namespace testbed_ns3
