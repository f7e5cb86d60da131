package main

import (
	"errors"
	"strconv"
	"sync"
)

// The Reseller API's catalogue, accounts and orders, in memory.

type product struct {
	Code     string `json:"kode"`
	Category string `json:"kategori"`
	Name     string `json:"produk"`
	Price    int64  `json:"harga"`
	Note     string `json:"catatan"`
	Status   string `json:"status"`

	goldPrice int64
}

// priceFor returns the product's price for a role: gold accounts pay less.
func (p product) priceFor(role string) int64 {
	if role == "gold" {
		return p.goldPrice
	}
	return p.Price
}

var topupProducts = []product{
	{Code: "1", Category: "Mobile Games", Name: "Mobile Legends Diamonds", Price: 15000, goldPrice: 14500, Note: "Minimal pembelian 100 diamonds", Status: "Aktif"},
	{Code: "2", Category: "Mobile Games", Name: "Free Fire 100 Diamonds", Price: 16000, goldPrice: 15500, Note: "", Status: "Aktif"},
	{Code: "3", Category: "Mobile Games", Name: "PUBG UC 60", Price: 12000, goldPrice: 11500, Note: "", Status: "NonAktif"},
}

func findProduct(code string) (product, bool) {
	for _, p := range topupProducts {
		if p.Code == code {
			return p, true
		}
	}
	return product{}, false
}

// transaction is the data of the seed's status response.
type transaction struct {
	OrderID  string `json:"order_id"`
	UserID   string `json:"user_id"`
	Product  string `json:"produk"`
	Price    int64  `json:"harga"`
	Status   string `json:"status"`
	Note     string `json:"keterangan"`
	Zone     string `json:"zone"`
	Nickname string `json:"nickname"`

	owner string // the reseller account that placed it
}

// orderData is the data of the seed's order response.
type orderData struct {
	OrderID string `json:"order_id"`
	UserID  string `json:"user_id"`
	Zone    string `json:"zone"`
	Product string `json:"produk"`
	Price   int64  `json:"harga"`
	Status  string `json:"status"`
}

var (
	errRefUsed        = errors.New("ref_id already used")
	errNoBalance      = errors.New("insufficient balance")
	errLedgerFull     = errors.New("ledger full")
	maxTopupOrders    = 100_000
	topupTransactions = map[string]transaction{
		"TRX_123456789": {OrderID: "TRX_123456789", UserID: "123", Product: "Mobile Legends Diamonds", Price: 15000,
			Status: "Success", Note: "Pembelian berhasil", Zone: "1234", Nickname: "Player123", owner: "123"},
	}
)

// ledger holds balances, orders and used ref_ids, changed together under
// one lock so that an order is all or nothing.
type ledger struct {
	mu       sync.Mutex
	balances map[string]int64       // account id -> balance
	refs     map[string]struct{}    // account id + "\x00" + ref_id
	orders   map[string]transaction // order id -> transaction (for status)
	seq      int
}

func newLedger() *ledger {
	l := &ledger{
		balances: map[string]int64{"123": 1_000_000, "456": 10_000},
		refs:     map[string]struct{}{},
		orders:   map[string]transaction{},
	}
	for id, t := range topupTransactions {
		l.orders[id] = t
	}
	return l
}

// transaction returns the order with id.
func (l *ledger) transaction(id string) (transaction, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.orders[id]
	return t, ok
}

// order debits price from account and records the order, unless ref was
// used by the account before or the balance does not cover the price.
func (l *ledger) order(account, ref, userID, zone string, p product, price int64) (orderData, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	refKey := account + "\x00" + ref
	switch {
	case hasKey(l.refs, refKey):
		return orderData{}, errRefUsed
	case l.balances[account] < price:
		return orderData{}, errNoBalance
	case len(l.orders) >= maxTopupOrders:
		return orderData{}, errLedgerFull
	}
	l.seq++
	id := "INV-" + strconv.Itoa(100000+l.seq) + randomID("", 3)
	l.refs[refKey] = struct{}{}
	l.balances[account] -= price
	l.orders[id] = transaction{OrderID: id, UserID: userID, Product: p.Name, Price: price, Status: "Pending", Zone: zone, owner: account}
	return orderData{OrderID: id, UserID: userID, Zone: zone, Product: p.Name, Price: price, Status: "Pending"}, nil
}

func (l *ledger) balance(account string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.balances[account]
}

func hasKey[K comparable, V any](m map[K]V, k K) bool {
	_, ok := m[k]
	return ok
}
