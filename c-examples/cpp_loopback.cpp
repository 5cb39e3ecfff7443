// cpp_loopback.cpp - using the C API from C++: a small RAII wrapper and two
// sessions wired back to back in memory.
//
// The wrapper owns the ikcpcb (released in the destructor), forwards KCP's
// output callback to a std::function, and turns messages into std::string.
// The "network" is a pair of queues; every third datagram from the client is
// dropped so that retransmission has something to do. Time is a plain
// counter, advanced to whatever ikcp_check() asks for.

#include <cstdio>
#include <deque>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "ikcp.h"

class KcpSession {
public:
    using Output = std::function<void(const char *data, int len)>;

    KcpSession(IUINT32 conv, Output output) : kcp_(ikcp_create(conv, this), &ikcp_release), output_(std::move(output))
    {
        if (!kcp_)
            throw std::bad_alloc();
        ikcp_setoutput(kcp_.get(), &KcpSession::on_output);
        ikcp_nodelay(kcp_.get(), 1, 10, 2, 1);
    }

    // KCP keeps `this` as its user pointer, so a session must stay where it is.
    KcpSession(const KcpSession &) = delete;
    KcpSession &operator=(const KcpSession &) = delete;

    void send(const std::string &message)
    {
        if (ikcp_send(kcp_.get(), message.data(), static_cast<int>(message.size())) < 0)
            throw std::runtime_error("ikcp_send refused the message");
    }

    // Returns false when no complete message is waiting.
    bool receive(std::string &message)
    {
        int size = ikcp_peeksize(kcp_.get());
        if (size < 0)
            return false;
        std::vector<char> buffer(static_cast<size_t>(size) + 1); // +1: ikcp_recv wants room even for size 0
        int n = ikcp_recv(kcp_.get(), buffer.data(), static_cast<int>(buffer.size()));
        message.assign(buffer.data(), n < 0 ? 0 : static_cast<size_t>(n));
        return n >= 0;
    }

    void input(const std::vector<char> &datagram)
    {
        ikcp_input(kcp_.get(), datagram.data(), static_cast<long>(datagram.size()));
    }

    void update(IUINT32 now) { ikcp_update(kcp_.get(), now); }
    IUINT32 next_update(IUINT32 now) const { return ikcp_check(kcp_.get(), now); }
    int unacknowledged() const { return ikcp_waitsnd(kcp_.get()); }

private:
    static int on_output(const char *data, int len, ikcpcb *, void *user)
    {
        static_cast<KcpSession *>(user)->output_(data, len);
        return 0;
    }

    std::unique_ptr<ikcpcb, void (*)(ikcpcb *)> kcp_;
    Output output_;
};

int main()
{
    std::deque<std::vector<char>> to_server, to_client;
    unsigned long client_datagrams = 0, dropped = 0;

    KcpSession client(42, [&](const char *data, int len) {
        if (++client_datagrams % 3 == 0) {
            ++dropped; // the lossy part of the wire
            return;
        }
        to_server.emplace_back(data, data + len);
    });
    KcpSession server(42, [&](const char *data, int len) { to_client.emplace_back(data, data + len); });

    const std::vector<std::string> messages = {
        "hello from C++",
        std::string(3000, 'k'), // larger than one segment: sent in fragments
        "",                     // empty messages are messages too
        "goodbye",
    };
    for (const auto &m : messages)
        client.send(m);

    std::vector<std::string> received;
    IUINT32 now = 0;
    while (received.size() < messages.size() || client.unacknowledged() > 0) {
        if (now > 60000) {
            std::fprintf(stderr, "cpp_loopback: no progress after 60 s of virtual time\n");
            return 1;
        }
        client.update(now);
        server.update(now);
        for (; !to_server.empty(); to_server.pop_front())
            server.input(to_server.front());
        for (; !to_client.empty(); to_client.pop_front())
            client.input(to_client.front());
        std::string m;
        while (server.receive(m))
            received.push_back(m);

        IUINT32 next = client.next_update(now);
        IUINT32 server_next = server.next_update(now);
        if (static_cast<IINT32>(server_next - next) < 0)
            next = server_next;
        now = static_cast<IINT32>(next - now) > 0 ? next : now + 1;
    }

    for (size_t i = 0; i < received.size(); i++) {
        if (received[i] != messages[i]) {
            std::fprintf(stderr, "cpp_loopback: message %zu differs\n", i);
            return 1;
        }
        if (received[i].size() < 40)
            std::printf("message %zu: %zu bytes \"%s\"\n", i, received[i].size(), received[i].c_str());
        else
            std::printf("message %zu: %zu bytes\n", i, received[i].size());
    }
    std::printf("cpp_loopback: %zu messages delivered in order, %lu of %lu client datagrams dropped, done at t=%u ms\n",
                received.size(), dropped, client_datagrams, static_cast<unsigned>(now));
    return 0;
}
