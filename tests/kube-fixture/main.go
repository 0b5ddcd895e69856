// Command kube-fixture runs a throwaway Kubernetes API server for netcanary's integration
// tests: an embedded etcd and kube-apiserver in one process, on loopback only, with TLS,
// RBAC and PodSecurity admission switched on as in a real cluster.
//
// It exists so the orchestrator's tests talk to the real API server (real validation,
// admission and authorization answers) without a container runtime, kind or a download
// step: the binary is built from the Go module proxy by build.sh and cached.
//
// Usage:
//
//	kube-fixture --dir DIR [--port PORT] [--exit-on-stdin-close=false] [-- KUBE-APISERVER-FLAGS...]
//	kube-fixture kustomize DIR
//
// Everything (etcd data, keys, certificates, the kubeconfig) goes under DIR. When /readyz
// answers ok it writes DIR/kubeconfig (user netcanary-admin in group system:masters) and
// prints exactly one line on stdout, `READY <kubeconfig path>`; all logs go to stderr. It
// stops cleanly on SIGTERM/SIGINT, and when stdin closes, so a test runner that dies without
// cleaning up does not leave an API server behind.
//
// Started again on a DIR it used before (with the same --port), it keeps the etcd data and
// the keys and certificates, so the kubeconfig written before stays valid: a restart, as
// of a control plane that came back.
//
// There are no controllers: no controller-manager, scheduler or kubelet. Namespaces get no
// `default` ServiceAccount and pods are never scheduled; tests create what they need.
//
// The API server reaches kubelets (pods/log, exec, port-forward) over TLS as a real one
// does: it trusts DIR/ca.crt for their serving certificates and presents
// DIR/kubelet-client.crt. DIR/kubelet.crt and DIR/kubelet.key are a serving certificate for
// `localhost` and the loopback addresses, for a test's fake kubelet: the API server runs on
// loopback, so that is the one place it can reach a kubelet.
//
// `kustomize DIR` prints the YAML that `kubectl kustomize DIR` (and so `kubectl apply -k
// DIR`) would send: the same kustomize library, at the version kubectl v0.35 vendors, with
// kubectl's defaults (loading only under DIR, no plugins, no Helm). The manifests' tests
// render with it, so they need neither kubectl nor kustomize on the machine.
package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

const adminUser = "netcanary-admin"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "kustomize" {
		if len(os.Args) != 3 {
			fmt.Fprintln(os.Stderr, "usage: kube-fixture kustomize DIR")
			os.Exit(2)
		}
		if err := kustomize(os.Args[2], os.Stdout); err != nil {
			fmt.Fprintf(os.Stderr, "kube-fixture: %v\n", err)
			os.Exit(1)
		}
		return
	}
	flags := flag.NewFlagSet("kube-fixture", flag.ExitOnError)
	dir := flags.String("dir", "", "directory for etcd data, keys, certificates and the kubeconfig (required)")
	port := flags.Int("port", 0, "secure port of the API server on 127.0.0.1 (default: a free one)")
	exitOnStdinClose := flags.Bool("exit-on-stdin-close", true,
		"shut down when stdin reaches end of file (keeps a crashed test runner from leaking the server)")
	_ = flags.Parse(os.Args[1:])
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "kube-fixture: --dir is required")
		os.Exit(2)
	}
	if err := run(*dir, *port, *exitOnStdinClose, flags.Args()); err != nil {
		fmt.Fprintf(os.Stderr, "kube-fixture: %v\n", err)
		os.Exit(1)
	}
}

// kustomize renders the kustomization in dir to out as multi-document YAML.
func kustomize(dir string, out io.Writer) error {
	options := krusty.MakeDefaultOptions()
	// What `kubectl kustomize` and `kustomize build` pass without --reorder: the
	// kustomization's sortOptions if it has any, else the legacy order (Namespaces and
	// CRDs first), in which `kubectl apply -k` creates the objects.
	options.Reorder = krusty.ReorderOptionUnspecified
	resources, err := krusty.MakeKustomizer(options).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return err
	}
	yaml, err := resources.AsYaml()
	if err != nil {
		return err
	}
	_, err = out.Write(yaml)
	return err
}

func run(dir string, port int, exitOnStdinClose bool, extraArgs []string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}

	// The command installs kube-apiserver's signal handler (SIGTERM/SIGINT cancel its
	// context; a second signal exits at once), so it is made first: a signal that arrives
	// while etcd is still starting shuts everything down too.
	cmd := app.NewAPIServerCommand()
	ctx := cmd.Context()
	if exitOnStdinClose {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			fmt.Fprintln(os.Stderr, "kube-fixture: stdin closed, shutting down")
			genericapiserver.RequestShutdown()
		}()
	}

	pki, err := loadPKI(dir)
	if errors.Is(err, fs.ErrNotExist) {
		pki, err = writePKI(dir)
	}
	if err != nil {
		return fmt.Errorf("making keys and certificates: %w", err)
	}

	etcd, stopEtcd, err := startEtcd(ctx, filepath.Join(dir, "etcd"))
	if err != nil {
		return fmt.Errorf("starting etcd: %w", err)
	}
	defer stopEtcd()
	if ctx.Err() != nil {
		return nil
	}

	if port == 0 {
		if port, err = freePort(); err != nil {
			return err
		}
	}
	server := "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := []string{
		"--bind-address=127.0.0.1",
		// Must be set: otherwise the server looks for a host interface address.
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + filepath.Join(dir, "serving.crt"),
		"--tls-private-key-file=" + filepath.Join(dir, "serving.key"),
		"--client-ca-file=" + filepath.Join(dir, "ca.crt"),
		"--anonymous-auth=false",
		"--authorization-mode=RBAC",
		// PodSecurity is in the default set; naming it keeps it on if the defaults change.
		"--enable-admission-plugins=PodSecurity",
		// Privileged pods pass validation, so a rejection comes from PodSecurity, as in a
		// real cluster, and not from the API server's own switch.
		"--allow-privileged=true",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file=" + filepath.Join(dir, "sa.key"),
		"--service-cluster-ip-range=10.96.0.0/16",
		"--etcd-servers=" + etcd.Config().AdvertiseClientUrls[0].String(),
		// Endpoints may not hold loopback addresses, so the `kubernetes` Service's endpoint
		// reconciler would fail forever on 127.0.0.1.
		"--endpoint-reconciler-type=none",
		// Kubelets are verified, and verify the API server, as in a cluster (see above).
		"--kubelet-certificate-authority=" + filepath.Join(dir, "ca.crt"),
		"--kubelet-client-certificate=" + filepath.Join(dir, "kubelet-client.crt"),
		"--kubelet-client-key=" + filepath.Join(dir, "kubelet-client.key"),
		"--profiling=false",
	}
	cmd.SetArgs(append(args, extraArgs...))
	// stdout carries only the READY line.
	cmd.SetOut(os.Stderr)
	cmd.SetErr(os.Stderr)

	go func() {
		if err := waitReady(ctx, server, pki); err != nil {
			return // shutting down before ready
		}
		path := filepath.Join(dir, "kubeconfig")
		if err := writeKubeconfig(path, server, pki); err != nil {
			fmt.Fprintf(os.Stderr, "kube-fixture: writing kubeconfig: %v\n", err)
			genericapiserver.RequestShutdown()
			return
		}
		fmt.Printf("READY %s\n", path)
	}()

	// Blocks until the API server has shut down.
	if err := cmd.Execute(); err != nil {
		return fmt.Errorf("kube-apiserver: %w", err)
	}
	return nil
}

// startEtcd runs a single-member etcd on free loopback ports and waits until it serves.
// The returned stop function closes it without the errors etcd logs for its own shutdown,
// which would otherwise bury the reason a failed start gave just before.
func startEtcd(ctx context.Context, dataDir string) (*embed.Etcd, func(), error) {
	cfg := embed.NewConfig()
	cfg.Name = "kube-fixture"
	cfg.Dir = dataDir
	clientPort, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	peerPort, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	clientURL := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(clientPort))}
	peerURL := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(peerPort))}
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	// Throwaway data: durability buys nothing and fsync makes every write slow.
	cfg.UnsafeNoFsync = true
	// etcd logs every request at "warn" here; only real trouble is worth the noise.
	level := zap.NewAtomicLevelAt(zap.ErrorLevel)
	logCfg := zap.NewProductionConfig()
	logCfg.Level = level
	logCfg.OutputPaths = []string{"stderr"}
	logger, err := logCfg.Build()
	if err != nil {
		return nil, nil, err
	}
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(logger)

	etcd, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, nil, err
	}
	stop := func() {
		level.SetLevel(zap.FatalLevel)
		etcd.Close()
	}
	select {
	case <-etcd.Server.ReadyNotify():
		return etcd, stop, nil
	case err := <-etcd.Err():
		stop()
		return nil, nil, err
	case <-ctx.Done():
		return etcd, stop, nil
	case <-time.After(60 * time.Second):
		stop()
		return nil, nil, errors.New("etcd not ready after 60 s")
	}
}

// freePort returns a loopback port that is free now, picked at random below the kernel's
// ephemeral range. A port the kernel picks itself (port 0) comes from that range, and in the
// moment between closing it here and binding it again the kernel may hand it out as the
// source port of any outgoing connection: with tests opening connections by the thousand,
// that happens. Below the range only another picker can take it, and a fixture that loses
// that race exits before READY with "address already in use", which tests/common retries.
func freePort() (int, error) {
	const lowest = 10000
	ephemeral := firstEphemeralPort()
	if ephemeral <= lowest {
		return kernelPort()
	}
	for range 100 {
		port := lowest + mathrand.IntN(ephemeral-lowest)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			l.Close()
			return port, nil
		}
	}
	return kernelPort()
}

// firstEphemeralPort is the low end of net.ipv4.ip_local_port_range (Linux's default where
// it cannot be read).
func firstEphemeralPort() int {
	text, _ := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if fields := strings.Fields(string(text)); len(fields) > 0 {
		if port, err := strconv.Atoi(fields[0]); err == nil {
			return port
		}
	}
	return 32768
}

// kernelPort asks the kernel for a free loopback port.
func kernelPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls /readyz as the admin until it answers 200, which includes the RBAC
// bootstrap roles: before that, authorization answers would not be the real ones.
func waitReady(ctx context.Context, server string, pki *pki) error {
	client := &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs:      pki.caPool,
			Certificates: []tls.Certificate{pki.admin},
		}},
	}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, server+"/readyz", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func writeKubeconfig(path, server string, pki *pki) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kube-fixture"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: pki.caPEM}
	cfg.AuthInfos[adminUser] = &clientcmdapi.AuthInfo{
		ClientCertificateData: pki.adminCertPEM,
		ClientKeyData:         pki.adminKeyPEM,
	}
	cfg.Contexts["kube-fixture"] = &clientcmdapi.Context{Cluster: "kube-fixture", AuthInfo: adminUser}
	cfg.CurrentContext = "kube-fixture"
	// Written aside and renamed, so a reader never sees half a file.
	tmp := path + ".tmp"
	if err := clientcmd.WriteToFile(*cfg, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// pki holds what the fixture itself needs of the keys it wrote.
type pki struct {
	caPEM, adminCertPEM, adminKeyPEM []byte
	caPool                           *x509.CertPool
	admin                            tls.Certificate
}

// loadPKI reads what writePKI wrote into dir on an earlier start; an error wrapping
// fs.ErrNotExist when a file is missing (a fresh directory).
func loadPKI(dir string) (*pki, error) {
	files := map[string][]byte{"ca.crt": nil, "admin.crt": nil, "admin.key": nil}
	for name := range files {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		files[name] = data
	}
	admin, err := tls.X509KeyPair(files["admin.crt"], files["admin.key"])
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(files["ca.crt"]) {
		return nil, errors.New("ca.crt holds no certificate")
	}
	return &pki{
		caPEM:        files["ca.crt"],
		adminCertPEM: files["admin.crt"],
		adminKeyPEM:  files["admin.key"],
		caPool:       pool,
		admin:        admin,
	}, nil
}

// writePKI makes a fresh CA, a serving certificate for loopback, an admin client
// certificate and the service-account signing key. ECDSA P-256 keeps start-up fast and is
// accepted by kube-apiserver, rustls and the token signer alike.
func writePKI(dir string) (*pki, error) {
	now := time.Now()
	caKey, err := newKey()
	if err != nil {
		return nil, err
	}
	caTemplate := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "netcanary kube-fixture CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caCert, caPEM, err := sign(caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}

	servingKey, err := newKey()
	if err != nil {
		return nil, err
	}
	_, servingPEM, err := sign(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(7 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"},
		// 10.96.0.1 is the `kubernetes` Service's address in --service-cluster-ip-range.
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback, net.IPv4(10, 96, 0, 1)},
	}, caCert, &servingKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}

	adminKey, err := newKey()
	if err != nil {
		return nil, err
	}
	_, adminPEM, err := sign(&x509.Certificate{
		// system:masters is bound to cluster-admin by the RBAC bootstrap policy.
		Subject:     pkix.Name{CommonName: adminUser, Organization: []string{"system:masters"}},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(7 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, caCert, &adminKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}

	kubeletKey, err := newKey()
	if err != nil {
		return nil, err
	}
	_, kubeletPEM, err := sign(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kubelet"},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(7 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}, caCert, &kubeletKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}

	kubeletClientKey, err := newKey()
	if err != nil {
		return nil, err
	}
	_, kubeletClientPEM, err := sign(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver-kubelet-client"},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(7 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, caCert, &kubeletClientKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}

	saKey, err := newKey()
	if err != nil {
		return nil, err
	}
	saPub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, err
	}

	servingKeyPEM, err := keyPEM(servingKey)
	if err != nil {
		return nil, err
	}
	adminKeyPEM, err := keyPEM(adminKey)
	if err != nil {
		return nil, err
	}
	saKeyPEM, err := keyPEM(saKey)
	if err != nil {
		return nil, err
	}
	kubeletKeyPEM, err := keyPEM(kubeletKey)
	if err != nil {
		return nil, err
	}
	kubeletClientKeyPEM, err := keyPEM(kubeletClientKey)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{
		"ca.crt":             caPEM,
		"serving.crt":        servingPEM,
		"serving.key":        servingKeyPEM,
		"admin.crt":          adminPEM,
		"admin.key":          adminKeyPEM,
		"sa.key":             saKeyPEM,
		"sa.pub":             pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPub}),
		"kubelet.crt":        kubeletPEM,
		"kubelet.key":        kubeletKeyPEM,
		"kubelet-client.crt": kubeletClientPEM,
		"kubelet-client.key": kubeletClientKeyPEM,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, err
		}
	}

	admin, err := tls.X509KeyPair(adminPEM, adminKeyPEM)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return &pki{caPEM: caPEM, adminCertPEM: adminPEM, adminKeyPEM: adminKeyPEM, caPool: pool, admin: admin}, nil
}

func newKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// sign issues template, signed by parent's key, and returns it parsed and as PEM.
func sign(template, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, []byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	template.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, template, parent, pub, signer)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// keyPEM encodes as PKCS#8 ("PRIVATE KEY"), the form every reader here accepts.
func keyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
